"""Enrollment: photos of a person → stored photo, faces, embeddings, and the index.

Files are read, decoded and analysed one at a time (each released before the next); the
faces of the whole upload are embedded in one batched model call; then each photo is
stored in its own transaction, re-read from its stream, so one bad file sinks no other and
none is half-stored.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from datetime import date

import numpy as np
from numpy.typing import NDArray
from PIL import Image
from sqlalchemy.exc import IntegrityError

from facedb.domain import UploadOutcome, UploadStatus
from facedb.errors import (
    Conflict,
    FaceDBError,
    ImageError,
    ImageTooLarge,
    InvalidInput,
    MultipleFaces,
    NoFaceFound,
    NotFound,
    RequestTooLarge,
)
from facedb.pipeline.analyzer import LocatedFace
from facedb.pipeline.decode import ImageHeader, read_header
from facedb.pipeline.types import Face as DetectedFace
from facedb.service import crossmatch
from facedb.service.ages import age_on
from facedb.service.context import FaceDB
from facedb.service.persons import check_taken_at
from facedb.service.records import PhotoRecord
from facedb.service.uploads import Upload
from facedb.store import repository as repo
from facedb.store.db import transaction
from facedb.store.models import Photo

CROP_MAX_SIDE = 160


@dataclass
class PhotoResult:
    """What happened to one uploaded file."""

    filename: str
    status: UploadStatus
    photo: PhotoRecord | None = None
    error: FaceDBError | None = None


@dataclass
class EnrollmentReport:
    """Every file's result, and what the upload as a whole amounted to."""

    person_id: str
    results: list[PhotoResult]

    def count(self, status: UploadStatus) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def outcome(self) -> UploadOutcome:
        """CREATED when a photo was stored; REFUSED when every file was; else UNCHANGED."""
        if self.count(UploadStatus.STORED):
            return UploadOutcome.CREATED
        if self.count(UploadStatus.REFUSED) == len(self.results):
            return UploadOutcome.REFUSED
        return UploadOutcome.UNCHANGED

    @property
    def first_error(self) -> FaceDBError | None:
        return next((r.error for r in self.results if r.error is not None), None)


@dataclass
class _Pending:
    """A file that passed analysis, waiting for its embedding and its transaction."""

    index: int
    header: ImageHeader
    face: LocatedFace


def enroll(db: FaceDB, person_id: str, uploads: list[Upload]) -> EnrollmentReport:
    """Store each photo that shows exactly one face; report every file on its own.

    Raises InvalidInput / RequestTooLarge for the request as a whole (nothing is stored),
    NotFound when the person does not exist or is deleted meanwhile.
    """
    if len(uploads) > db.settings.max_upload_files:
        raise RequestTooLarge(
            f"{len(uploads)} files in one upload; the limit is {db.settings.max_upload_files}. "
            "Send the rest in further requests."
        )
    report = commit(db, [prepare(db, person_id, uploads)])[0]
    gone = next((r.error for r in report.results if isinstance(r.error, NotFound)), None)
    if gone is not None:
        raise gone
    return report


@dataclass
class Prepared:
    """One person's photos after validation and analysis, before embedding and storing."""

    person_id: str
    uploads: list[Upload]
    birth_date: date | None
    birth_year: int | None
    results: list[PhotoResult | None]
    pending: list[_Pending]


def prepare(db: FaceDB, person_id: str, uploads: list[Upload]) -> Prepared:
    """Check the upload and analyse each photo (one decoded at a time); store nothing.

    Raises InvalidInput for the upload as a whole, NotFound for an unknown person.
    """
    settings = db.settings
    if not uploads:
        raise InvalidInput("send at least one photo", field="files")
    with transaction(db.sessions) as session:
        person = repo.get_person(session, person_id)
        birth_date, birth_year = person.birth_date, person.birth_year
    for upload in uploads:
        if upload.taken_at is not None:
            check_taken_at(upload.taken_at, birth_date, birth_year)

    results: list[PhotoResult | None] = [None] * len(uploads)
    pending: list[_Pending] = []
    pixels = 0
    for i, upload in enumerate(uploads):
        try:
            data = upload.read(settings.max_image_bytes)
            header = read_header(data, settings.max_image_bytes, settings.max_image_pixels)
            pixels += header.pixels
            if pixels > settings.max_request_pixels:
                raise ImageTooLarge(
                    f"the photos of this upload pass {settings.max_request_pixels} pixels "
                    "together; send this one in another request"
                )
            pending.append(_Pending(i, header, _single_face(db.analyzer.locate(data))))
        except (ImageError, NoFaceFound, MultipleFaces) as exc:
            results[i] = PhotoResult(upload.filename, UploadStatus.REFUSED, error=exc)
        finally:
            data = b""  # release this file's bytes before the next is read
    return Prepared(person_id, uploads, birth_date, birth_year, results, pending)


def commit(db: FaceDB, batch: list[Prepared], sweep: bool = True) -> list[EnrollmentReport]:
    """Embed the faces of every prepared upload in one model call, then store each photo in
    its own transaction. A person deleted meanwhile gets NotFound on each of their files.

    ``sweep`` cross-matches the new faces at once (else the service's sweeper or
    `facedb crossmatch` does).
    """
    faces = db.analyzer.embed([p.face for item in batch for p in item.pending])
    reports = []
    for item in batch:
        mine, faces = faces[: len(item.pending)], faces[len(item.pending) :]
        for waiting, face in zip(item.pending, mine, strict=True):
            upload = item.uploads[waiting.index]
            age = (
                age_on(upload.taken_at, item.birth_date, item.birth_year)
                if upload.taken_at
                else None
            )
            try:
                result = _store(db, item.person_id, upload, waiting.header, face, age)
            except (Conflict, NotFound) as exc:
                result = PhotoResult(upload.filename, UploadStatus.REFUSED, error=exc)
            item.results[waiting.index] = result
        reports.append(EnrollmentReport(item.person_id, [r for r in item.results if r]))
    db.index.apply_committed()
    if sweep and any(item.pending for item in batch):
        crossmatch.sweep(db)  # after the commits; never fails the enrollment
    return reports


# A photo with several faces is enrolled only when one of them is this many times the
# area (twice the side) of every other: the person photographed, with faces far behind.
DOMINANT_AREA = 4.0


def _single_face(faces: list[LocatedFace]) -> LocatedFace:
    """Return the one face to enroll: the only one, or one that clearly dominates."""
    if not faces:
        raise NoFaceFound("no face was found in the photo")
    if len(faces) == 1:
        return faces[0]
    by_area = sorted(((f.detection.box.w * f.detection.box.h, f) for f in faces),
                     key=lambda pair: pair[0], reverse=True)  # fmt: skip
    (first, largest), (second, _) = by_area[:2]
    if first >= DOMINANT_AREA * second:
        return largest
    raise MultipleFaces(
        f"the photo shows {len(faces)} faces of similar size; enroll a photo of this person "
        "alone (or one where their face is at least twice the size of any other)"
    )


def _store(
    db: FaceDB,
    person_id: str,
    upload: Upload,
    header: ImageHeader,
    face: DetectedFace,
    age_at_photo: float | None,
) -> PhotoResult:
    data = upload.read(db.settings.max_image_bytes)
    sha = hashlib.sha256(data).hexdigest()
    try:
        with transaction(db.sessions) as session:
            repo.lock_person(session, person_id)
            generation, version = repo.lock_generation(session)
            if version is not None and version != face.model_version:
                raise Conflict(
                    "the embedding model changed while this photo was analysed (a re-embed "
                    "finished); nothing was stored, upload the photo again"
                )
            existing = repo.photo_by_sha(session, person_id, sha)
            if existing is not None:
                faces = repo.faces_of_photos(session, [existing.id]).get(existing.id, [])
                record = PhotoRecord.of(existing, faces)
                return PhotoResult(upload.filename, UploadStatus.DUPLICATE, record)
            photo = Photo(
                person_id=person_id,
                sha256=sha,
                content=data,
                media_type=header.media_type,
                width=header.width,
                height=header.height,
                taken_at=upload.taken_at,
                age_at_photo=age_at_photo,
            )
            rows = repo.add_photo(
                session,
                photo,
                [new_face(face)],
                generation,
                db.analyzer.model_name,
                face.model_version,
            )
            record = PhotoRecord.of(photo, rows)
    except IntegrityError as exc:  # SQLite: the person was deleted between read and insert
        raise NotFound(f"no person with id {person_id} (deleted during the upload)") from exc
    return PhotoResult(upload.filename, UploadStatus.STORED, record)


def new_face(face: DetectedFace) -> repo.NewFace:
    """Return the storable form of an analysed face."""
    box = face.box
    return repo.NewFace(
        box=(box.x, box.y, box.w, box.h),
        landmarks=face.detection.landmarks(),
        confidence=face.detection.confidence,
        age=face.age,
        gender=face.gender,
        gender_probability=face.gender_probability,
        crop_jpeg=crop_jpeg(face.chip),
        embedding=face.embedding,
    )


def crop_jpeg(chip_rgb: NDArray[np.uint8]) -> bytes:
    """Return a small JPEG of an aligned face chip, for display."""
    image = Image.fromarray(chip_rgb)
    image.thumbnail((CROP_MAX_SIDE, CROP_MAX_SIDE))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def photos_of(db: FaceDB, person_id: str) -> list[PhotoRecord]:
    """Return a person's photos with their faces, oldest first."""
    with transaction(db.sessions) as session:
        repo.get_person(session, person_id)
        return [PhotoRecord.of(p, f) for p, f in repo.photos_of(session, person_id)]


def photo_content(db: FaceDB, photo_id: str) -> tuple[bytes, str]:
    """Return a stored photo's original bytes and media type."""
    with transaction(db.sessions) as session:
        photo = repo.get_photo(session, photo_id)
        return photo.content, photo.media_type


def face_crop(db: FaceDB, face_id: int) -> bytes:
    """Return the JPEG of an enrolled face, as aligned."""
    with transaction(db.sessions) as session:
        return repo.get_face(session, face_id).crop_jpeg


def delete_photo(db: FaceDB, photo_id: str) -> int:
    """Delete a photo and its faces; the index drops them before this returns."""
    with transaction(db.sessions) as session:
        removed = repo.delete_photo(session, photo_id)
    db.index.apply_committed()
    return len(removed)

"""Enrollment: photos of a person → stored photo, faces, embeddings, and the index.

Files are read, decoded and analysed one at a time (each released before the next); the
faces of the whole upload are embedded in one batched model call; then each photo is
stored in its own transaction, re-read from its stream, so one bad file sinks no other and
none is half-stored.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from facedb.agecheck import checked
from facedb.ages import age_on
from facedb.config import Settings
from facedb.domain import AuditAction, UploadOutcome, UploadStatus
from facedb.errors import (
    Conflict,
    FaceDBError,
    ImageError,
    ImageTooLarge,
    InvalidInput,
    LowQuality,
    MultipleFaces,
    NoFaceFound,
    NotFound,
    RequestTooLarge,
)
from facedb.index.face_index import FaceIndex
from facedb.pipeline.base import Analyzer, LocatedFace
from facedb.pipeline.decode import ImageHeader, read_header
from facedb.pipeline.types import Face as DetectedFace
from facedb.records import Caller, PhotoRecord
from facedb.services import quality
from facedb.services.persons import age_conflict, check_taken_at
from facedb.services.uploads import Upload
from facedb.store.embeddings import Embedded
from facedb.store.photos import NewFace, NewPhoto
from facedb.store.unit import Store
from facedb.trail.audit import LOCAL, AuditService

CROP_MAX_SIDE = 160


@dataclass
class PhotoResult:
    """What happened to one uploaded file."""

    filename: str
    status: UploadStatus
    photo: PhotoRecord | None = None
    error: FaceDBError | None = None
    warning: str | None = None  # stored, but its face will search badly (and why)


@dataclass
class EnrollmentReport:
    """Every file's result, and what the upload as a whole amounted to."""

    person_id: str
    results: list[PhotoResult]

    def count(self, status: UploadStatus) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def stored(self) -> int:
        return self.count(UploadStatus.STORED)

    @property
    def duplicates(self) -> int:
        return self.count(UploadStatus.DUPLICATE)

    @property
    def refused(self) -> int:
        return self.count(UploadStatus.REFUSED)

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


@dataclass
class Prepared:
    """One person's photos after validation and analysis, before embedding and storing."""

    person_id: str
    uploads: list[Upload]
    birth_date: date | None
    birth_year: int | None
    results: list[PhotoResult | None]
    pending: list[_Pending]


# A photo with several faces is enrolled only when one of them is this many times the
# area (twice the side) of every other: the person photographed, with faces far behind.
DOMINANT_AREA = 4.0


@dataclass(frozen=True)
class EnrollmentService:
    """Photos of a person → stored photo, face, embedding, and the index; photos read back
    and deleted. ``sweep`` (the cross-matcher's) matches new faces after they commit."""

    settings: Settings
    store: Store
    index: FaceIndex
    analyzer: Analyzer
    audit: AuditService
    sweep: Callable[[], int]

    def enroll(
        self, person_id: str, uploads: list[Upload], caller: Caller = LOCAL
    ) -> EnrollmentReport:
        """Store each photo that shows exactly one face; report every file on its own
        (audited). A photo whose declared age contradicts its face's estimated age is
        stored, flagged ``age_conflict``.

        Raises InvalidInput / RequestTooLarge for the request as a whole (nothing is
        stored), NotFound when the person does not exist or is deleted meanwhile.
        """
        with self.audit.audited(AuditAction.PHOTO_UPLOAD, caller) as trail:
            limit = self.settings.max_upload_files
            if len(uploads) > limit:
                raise RequestTooLarge(
                    f"{len(uploads)} files in one upload; the limit is {limit}. "
                    "Send the rest in further requests."
                )
            report = self.commit([self.prepare(person_id, uploads)], acknowledged=False)[0]
            gone = next((r.error for r in report.results if isinstance(r.error, NotFound)), None)
            if gone is not None:
                raise gone
            trail.faces_found = sum(r.photo is not None for r in report.results)
            files = [_audited(r) for r in report.results]
            trail.results = [{"person_id": person_id, "files": files}]
            stored = [r.photo.id for r in report.results
                      if r.status is UploadStatus.STORED and r.photo is not None]  # fmt: skip
            trail.along = lambda unit: unit.photos.acknowledge(stored)  # with the audit entry
        return report

    def prepare(self, person_id: str, uploads: list[Upload]) -> Prepared:
        """Check the upload and analyse each photo (one decoded at a time); store nothing.

        Raises InvalidInput for the upload as a whole, NotFound for an unknown person.
        """
        settings = self.settings
        if not uploads:
            raise InvalidInput("send at least one photo", field="files")
        with self.store.unit() as unit:
            person = unit.persons.get(person_id)

        results: list[PhotoResult | None] = [None] * len(uploads)
        pending: list[_Pending] = []
        pixels = 0
        for i, upload in enumerate(uploads):
            try:  # each file's date on its own: one wrong date refuses that file alone
                if upload.date_sent is not None:
                    raise InvalidInput(
                        f"{upload.date_sent!r} is not a date: write the photo date YYYY-MM-DD",
                        field="taken_at",
                    )
                if upload.taken_at is not None:
                    check_taken_at(upload.taken_at, person.birth_date, person.birth_year)
            except InvalidInput as exc:
                results[i] = PhotoResult(upload.filename, UploadStatus.REFUSED, error=exc)
                continue
            try:
                data = upload.read(settings.max_image_bytes)
                header = read_header(data, settings.max_image_bytes, settings.max_image_pixels)
                pixels += header.pixels
                if pixels > settings.max_request_pixels:
                    raise ImageTooLarge(
                        f"the photos of this upload pass {settings.max_request_pixels} pixels "
                        "together; send this one in another request"
                    )
                face = _single_face(self.analyzer.locate(data))
                quality.refuse_below(face.quality, settings.quality_floor)
                pending.append(_Pending(i, header, face))
            except (ImageError, NoFaceFound, MultipleFaces, LowQuality) as exc:
                results[i] = PhotoResult(upload.filename, UploadStatus.REFUSED, error=exc)
            finally:
                data = b""  # release this file's bytes before the next is read
        return Prepared(person_id, uploads, person.birth_date, person.birth_year, results, pending)

    def commit(
        self, batch: list[Prepared], sweep: bool = True, acknowledged: bool = True
    ) -> list[EnrollmentReport]:
        """Embed the faces of every prepared upload in one model call, then store each
        photo in its own transaction. A person deleted meanwhile gets NotFound on each of
        their files.

        ``sweep`` cross-matches the new faces at once (else the background sweep or
        `facedb crossmatch` does). ``acknowledged`` false: the photos are stored as not
        yet answered for (the upload acknowledges them with its audit entry), so a retry
        of an upload whose answer was lost answers ``stored`` as the first would have.
        """
        faces = self.analyzer.embed([p.face for item in batch for p in item.pending])
        reports = []
        stored_now: set[str] = set()  # a second copy in this very batch is a duplicate
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
                    result = self._store(item.person_id, upload, waiting.header, face, age,
                                         acknowledged, stored_now)  # fmt: skip
                    if result.status is UploadStatus.STORED and result.photo is not None:
                        stored_now.add(result.photo.id)
                except (Conflict, NotFound) as exc:
                    result = PhotoResult(upload.filename, UploadStatus.REFUSED, error=exc)
                item.results[waiting.index] = result
            reports.append(EnrollmentReport(item.person_id, [r for r in item.results if r]))
        self.index.apply_own_writes()
        if sweep and any(item.pending for item in batch):
            self.sweep()  # after the commits; never fails the enrollment
        return reports

    def _store(
        self,
        person_id: str,
        upload: Upload,
        header: ImageHeader,
        face: DetectedFace,
        age_at_photo: float | None,
        acknowledged: bool = True,
        stored_now: frozenset[str] | set[str] = frozenset(),
    ) -> PhotoResult:
        data = upload.read(self.settings.max_image_bytes)
        sha = hashlib.sha256(data).hexdigest()
        with self.store.unit() as unit:
            unit.persons.lock(person_id)
            generation, version = unit.generations.lock()
            if version is not None and version != face.model_version:
                raise Conflict(
                    "the embedding model changed while this photo was analysed (a re-embed "
                    "finished); nothing was stored, upload the photo again"
                )
            existing = unit.photos.by_sha(person_id, sha)
            if existing is not None:
                # Stored by an upload never answered (an outage cut it off): answer as the
                # first success would have; its audit entry acknowledges it now.
                first = (
                    not acknowledged
                    and existing.id not in stored_now
                    and not unit.photos.acknowledged(existing.id)
                )
                status = UploadStatus.STORED if first else UploadStatus.DUPLICATE
                return PhotoResult(upload.filename, status, checked(existing))
            photo = NewPhoto(
                person_id,
                sha,
                data,
                header.media_type,
                header.width,
                header.height,
                upload.taken_at,
                age_at_photo,
                age_conflict(age_at_photo, [face.age]),
                filename=upload.filename.replace("\\", "/").rsplit("/", 1)[-1][:255] or None,
                acknowledged=acknowledged,
            )
            embedded = Embedded(generation, self.analyzer.model_name, face.model_version)
            record = unit.photos.add(photo, [new_face(face)], embedded)
            unit.pairs.reopen_inconclusive(person_id)  # a new photo: the reviewer's wish
        warned = quality.warning(face.quality, self.settings.quality_warn_below)
        return PhotoResult(upload.filename, UploadStatus.STORED, checked(record), warning=warned)

    def photos_of(self, person_id: str) -> list[PhotoRecord]:
        """Return a person's photos with their faces, in upload order."""
        with self.store.unit() as unit:
            unit.persons.get(person_id)
            return [checked(p) for p in unit.photos.of_person(person_id)]

    def photo_content(self, photo_id: str) -> tuple[bytes, str]:
        """Return a stored photo's original bytes and media type."""
        with self.store.unit() as unit:
            return unit.photos.content(photo_id)

    def face_crop(self, face_id: int) -> bytes:
        """Return the JPEG of an enrolled face, as aligned."""
        with self.store.unit() as unit:
            return unit.photos.crop(face_id)

    def delete_photo(self, photo_id: str, caller: Caller = LOCAL) -> int:
        """Delete a photo and its faces (audited); the index drops them before this returns
        (during an index outage, before any search is answered again)."""
        with self.audit.audited(AuditAction.PHOTO_DELETE, caller) as trail:
            with self.store.unit() as unit:
                photo = unit.photos.get(photo_id)
                removed = unit.photos.delete(photo_id)
            trail.results = [{"photo_id": photo_id, "person_id": photo.person_id,
                              "filename": photo.filename, "faces": len(removed)}]  # fmt: skip
        self.index.apply_own_writes()
        return len(removed)


def _audited(result: PhotoResult) -> dict[str, object]:
    """What the audit keeps of one file of an upload."""
    return {
        "file": result.filename,
        "status": result.status.value,
        "photo_id": result.photo.id if result.photo else None,
        "age_conflict": result.photo.age_conflict if result.photo else None,
        "error": result.error.code if result.error else None,
        "warning": result.warning,
    }


def _single_face(faces: list[LocatedFace]) -> LocatedFace:
    """Return the one face to enroll: the only one, or one that clearly dominates."""
    if not faces:
        raise NoFaceFound("no face was found in the photo")
    if len(faces) == 1:
        return faces[0]
    by_area = sorted(
        ((f.detection.box.w * f.detection.box.h, f) for f in faces),
        key=lambda pair: pair[0],
        reverse=True,
    )
    (first, largest), (second, _) = by_area[:2]
    if first >= DOMINANT_AREA * second:
        return largest
    raise MultipleFaces(
        f"the photo shows {len(faces)} faces of similar size; enroll a photo of this person "
        "alone (or one where their face is at least twice the size of any other)"
    )


def new_face(face: DetectedFace) -> NewFace:
    """Return the storable form of an analysed face."""
    box = face.box
    return NewFace(
        box=(box.x, box.y, box.w, box.h),
        landmarks=face.detection.landmarks(),
        confidence=face.detection.confidence,
        age=face.age,
        gender=face.gender,
        gender_probability=face.gender_probability,
        quality=face.quality.as_dict() if face.quality else None,
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

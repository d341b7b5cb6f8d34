"""Enrollment: photos of a person → stored photo, faces, embeddings, and the index."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from datetime import date

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from facedb.errors import FaceDBError, ImageError, MultipleFaces, NoFaceFound
from facedb.pipeline.types import Face as DetectedFace
from facedb.service.ages import age_on
from facedb.service.context import FaceDB
from facedb.store import repository as repo
from facedb.store.db import transaction
from facedb.store.models import Face, Photo

MEDIA_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
CROP_MAX_SIDE = 160


@dataclass
class PhotoOutcome:
    """What happened to one uploaded file: stored, duplicate (already stored), or refused."""

    filename: str
    status: str
    photo: Photo | None = None
    faces: list[Face] = field(default_factory=list)
    error: FaceDBError | None = None


def enroll_photos(
    db: FaceDB, person_id: str, files: list[tuple[str, bytes]], taken_at: date | None = None
) -> list[PhotoOutcome]:
    """Store each file that holds exactly one face; report every file on its own.

    Each photo commits in its own transaction, so one bad file does not sink the others
    and none is half-stored. The index holds the new faces before this returns.
    """
    with transaction(db.sessions) as session:
        person = repo.get_person(session, person_id)
        birth_date, birth_year = person.birth_date, person.birth_year
    analysed = db.analyzer.analyze_many([data for _, data in files])
    outcomes = []
    for (filename, data), result in zip(files, analysed, strict=True):
        if isinstance(result, ImageError):
            outcomes.append(PhotoOutcome(filename, "refused", error=result))
            continue
        if not result:
            error: FaceDBError = NoFaceFound("no face was found in the photo")
            outcomes.append(PhotoOutcome(filename, "refused", error=error))
            continue
        if len(result) > 1:
            error = MultipleFaces(
                f"the photo shows {len(result)} faces; enroll a photo of this person alone"
            )
            outcomes.append(PhotoOutcome(filename, "refused", error=error))
            continue
        age = age_on(taken_at, birth_date, birth_year) if taken_at else None
        outcomes.append(_store(db, person_id, filename, data, result[0], taken_at, age))
    db.index.apply_committed()
    return outcomes


def _store(
    db: FaceDB,
    person_id: str,
    filename: str,
    data: bytes,
    face: DetectedFace,
    taken_at: date | None,
    age_at_photo: float | None,
) -> PhotoOutcome:
    sha = hashlib.sha256(data).hexdigest()
    with Image.open(io.BytesIO(data)) as header:
        fmt = header.format or "JPEG"
        width, height = header.size
    with transaction(db.sessions) as session:
        generation = repo.lock_generation(session)
        existing = repo.photo_by_sha(session, person_id, sha)
        if existing is not None:
            faces = repo.faces_of_photos(session, [existing.id]).get(existing.id, [])
            return PhotoOutcome(filename, "duplicate", existing, faces)
        photo = Photo(
            person_id=person_id,
            sha256=sha,
            content=data,
            media_type=MEDIA_TYPES.get(fmt, "application/octet-stream"),
            width=width,
            height=height,
            taken_at=taken_at,
            age_at_photo=age_at_photo,
        )
        rows = repo.add_photo(
            session,
            photo,
            [new_face(face)],
            generation,
            db.analyzer.model_name,
            db.analyzer.model_version,
        )
    return PhotoOutcome(filename, "stored", photo, rows)


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


def delete_photo(db: FaceDB, photo_id: str) -> int:
    """Delete a photo and its faces; the index drops them before this returns."""
    with transaction(db.sessions) as session:
        removed = repo.delete_photo(session, photo_id)
    db.index.apply_committed()
    return len(removed)

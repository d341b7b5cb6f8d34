"""Photos and the faces found in them, with their embeddings and the index change log."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from facedb.ages import age_at_photo
from facedb.domain import ChangeOp, EstimatedGender
from facedb.errors import Conflict, NotFound
from facedb.records import FaceInContext, FaceRecord, PhotoRecord
from facedb.store.embeddings import Embedded, EmbeddingRepository
from facedb.store.models import Change, Face, Person, Photo
from facedb.store.rows import (
    chunks,
    face_record,
    get_or_404,
    person_record,
    photo_record,
)


@dataclass(frozen=True)
class NewPhoto:
    """A photo to store: everything but its id."""

    person_id: str
    sha256: str
    content: bytes
    media_type: str
    width: int
    height: int
    taken_at: date | None
    age_at_photo: float | None
    age_conflict: bool = False
    filename: str | None = None
    acknowledged: bool = True  # False: the upload's answer is still to be given


@dataclass(frozen=True)
class NewFace:
    """A face to store: everything but the ids."""

    box: tuple[int, int, int, int]
    landmarks: dict[str, Any]
    confidence: float
    age: float | None
    gender: EstimatedGender | None
    gender_probability: float | None
    crop_jpeg: bytes
    embedding: NDArray[np.float32]
    quality: dict[str, Any] | None = None  # Quality.as_dict(); None: not measured


class PhotoRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, photo: NewPhoto, faces: Sequence[NewFace], embedded: Embedded) -> PhotoRecord:
        """Insert a photo, its faces and their embeddings, and log the index additions.

        NotFound when the person was deleted meanwhile (SQLite reports it here), Conflict
        when the same bytes were stored for them meanwhile.
        """
        try:
            return self._add(photo, faces, embedded)
        except IntegrityError as exc:
            self._session.rollback()
            if self._session.get(Person, photo.person_id) is None:
                raise NotFound(
                    f"no person with id {photo.person_id} (deleted during the upload)"
                ) from exc
            raise Conflict("the same photo was stored for this person meanwhile") from exc

    def _add(self, photo: NewPhoto, faces: Sequence[NewFace], embedded: Embedded) -> PhotoRecord:
        row = Photo(**vars(photo))
        self._session.add(row)
        self._session.flush()
        face_rows = []
        for new in faces:
            box = dict(zip(("box_x", "box_y", "box_w", "box_h"), new.box, strict=True))
            columns = {k: v for k, v in vars(new).items() if k not in ("box", "embedding")}
            face_rows.append(Face(photo_id=row.id, person_id=row.person_id, **box, **columns))
        self._session.add_all(face_rows)
        self._session.flush()
        ids = [f.id for f in face_rows]
        vectors = np.stack([new.embedding for new in faces]) if faces else None
        if vectors is not None:
            EmbeddingRepository(self._session).add(ids, vectors, embedded)
        self._session.add_all([Change(op=ChangeOp.ADD, face_id=f) for f in ids])
        self._session.flush()
        return photo_record(row, face_rows)

    def by_sha(self, person_id: str, sha256: str) -> PhotoRecord | None:
        """Return the person's photo with these bytes (and its faces), if stored."""
        row = self._session.execute(
            select(Photo).where(Photo.person_id == person_id, Photo.sha256 == sha256)
        ).scalar_one_or_none()
        return photo_record(row, self._faces_of([row.id])[row.id]) if row is not None else None

    def acknowledged(self, photo_id: str) -> bool:
        """Return whether the upload that stored this photo was answered."""
        return bool(
            self._session.execute(select(Photo.acknowledged).where(Photo.id == photo_id)).scalar()
        )

    def acknowledge(self, photo_ids: Sequence[str]) -> None:
        """Record that the uploads of these photos were answered (with the audit entry)."""
        if photo_ids:
            self._session.execute(
                update(Photo).where(Photo.id.in_(list(photo_ids))).values(acknowledged=True)
            )

    def get(self, photo_id: str) -> PhotoRecord:
        row = get_or_404(self._session, Photo, photo_id, "photo")
        return photo_record(row, self._faces_of([row.id])[row.id])

    def find(self, photo_id: str) -> PhotoRecord | None:
        row = self._session.get(Photo, photo_id)
        return photo_record(row, self._faces_of([row.id])[row.id]) if row is not None else None

    def content(self, photo_id: str) -> tuple[bytes, str]:
        """Return the original bytes and media type."""
        row = self._session.execute(
            select(Photo.content, Photo.media_type).where(Photo.id == photo_id)
        ).one_or_none()
        if row is None:
            get_or_404(self._session, Photo, photo_id, "photo")
        assert row is not None
        return bytes(row[0]), str(row[1])

    def of_person(self, person_id: str) -> list[PhotoRecord]:
        """Return a person's photos with their faces, in upload order."""
        rows = list(
            self._session.execute(
                select(Photo).where(Photo.person_id == person_id).order_by(Photo.created_at)
            ).scalars()
        )
        faces = self._faces_of([p.id for p in rows])
        return [photo_record(p, faces[p.id]) for p in rows]

    def set_declared_age(self, photo_id: str, age: float | None, conflict: bool) -> None:
        """Set a photo's declared age (its person's birth changed) and whether it conflicts."""
        photo = get_or_404(self._session, Photo, photo_id, "photo")
        photo.age_at_photo, photo.age_conflict = age, conflict

    def set_date(
        self, photo_id: str, taken_at: date | None, age: float | None, conflict: bool
    ) -> None:
        """Set the date a photo was taken (None: unknown), the declared age it gives and
        whether that age conflicts with the faces' estimates."""
        photo = get_or_404(self._session, Photo, photo_id, "photo")
        photo.taken_at, photo.age_at_photo, photo.age_conflict = taken_at, age, conflict

    def delete(self, photo_id: str) -> list[int]:
        """Delete a photo with its faces, logging the index removals; return the face ids."""
        get_or_404(self._session, Photo, photo_id, "photo")
        face_ids = self.face_ids(photo_id=photo_id)
        self._session.add_all([Change(op=ChangeOp.REMOVE, face_id=f) for f in face_ids])
        self._session.execute(delete(Photo).where(Photo.id == photo_id))
        return face_ids

    def face(self, face_id: int) -> FaceRecord:
        return face_record(get_or_404(self._session, Face, face_id, "face"))

    def crop(self, face_id: int) -> bytes:
        """Return the JPEG of a face as it was aligned."""
        crop = self._session.execute(
            select(Face.crop_jpeg).where(Face.id == face_id)
        ).scalar_one_or_none()
        if crop is None:
            get_or_404(self._session, Face, face_id, "face")
        return bytes(crop or b"")

    def face_ids(self, *, person_id: str | None = None, photo_id: str | None = None) -> list[int]:
        query = select(Face.id)
        if person_id is not None:
            query = query.where(Face.person_id == person_id)
        if photo_id is not None:
            query = query.where(Face.photo_id == photo_id)
        return [int(i) for i in self._session.execute(query).scalars()]

    def count_faces(self) -> int:
        return int(self._session.execute(select(func.count(Face.id))).scalar_one())

    def ages(self, face_ids: Sequence[int]) -> dict[int, float]:
        """Return ``{face_id: age at the photo}`` for those faces with one: declared (birth
        and photo dates known) before estimated."""
        found: dict[int, float] = {}
        for chunk in chunks(face_ids):
            rows = self._session.execute(
                select(Face.id, Photo.age_at_photo, Face.age)
                .join(Photo, Photo.id == Face.photo_id)
                .where(Face.id.in_(chunk))
            )
            for face_id, declared, estimated in rows.tuples():
                age, _ = age_at_photo(declared, estimated)
                if age is not None:
                    found[int(face_id)] = age
        return found

    def in_context(self, face_ids: Sequence[int]) -> dict[int, FaceInContext]:
        """Return ``{face_id: FaceInContext}`` for the ids that still exist."""
        if not face_ids:
            return {}
        rows = self._session.execute(
            select(Face, Person, Photo.taken_at, Photo.age_at_photo)
            .join(Person, Person.id == Face.person_id)
            .join(Photo, Photo.id == Face.photo_id)
            .where(Face.id.in_(list(face_ids)))
        )
        return {
            int(face.id): FaceInContext(
                face=face_record(face),
                person=person_record(person),
                taken_at=taken,
                declared_age=age,
            )
            for face, person, taken, age in rows.tuples()
        }

    def _faces_of(self, photo_ids: Sequence[str]) -> dict[str, list[Face]]:
        out: dict[str, list[Face]] = {photo_id: [] for photo_id in photo_ids}
        if not photo_ids:
            return out
        for face in self._session.execute(
            select(Face).where(Face.photo_id.in_(list(photo_ids))).order_by(Face.id)
        ).scalars():
            out[face.photo_id].append(face)
        return out

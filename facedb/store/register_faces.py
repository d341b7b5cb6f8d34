"""The faces of persons in a register, as cross-matching reads them (a read model)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from facedb.domain import REGISTER_OF, Register
from facedb.records import RegisterFace
from facedb.store.models import Embedding, Face, Person, Photo
from facedb.store.rows import chunks, decode_vectors

_IN_REGISTER = list(REGISTER_OF)  # the statuses that place a person in a register


class RegisterFaces:
    """The faces of persons in a register, as cross-matching reads them."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def waiting(
        self, generation: int, dimension: int, limit: int
    ) -> tuple[list[RegisterFace], NDArray[np.float32]]:
        """Return faces not yet cross-matched (oldest first), with their vectors."""
        query = _with_vector(generation).where(Face.crossmatched_at.is_(None))
        return self._read(query.order_by(Face.id).limit(limit), dimension)

    def vectors(
        self, register: Register, generation: int, dimension: int, batch: int = 20_000
    ) -> tuple[NDArray[np.int64], list[RegisterFace], NDArray[np.float32]]:
        """Return every face of ``register``'s persons: ids, what a pair records of each,
        and vectors, by id."""
        ids: list[int] = []
        faces: list[RegisterFace] = []
        blobs: list[bytes] = []
        after = -1
        statuses = list(register.statuses)
        while True:
            query = (
                _with_vector(generation)
                .where(Person.status.in_(statuses), Face.id > after)
                .order_by(Face.id)
                .limit(batch)
            )
            rows = self._session.execute(query).all()
            if not rows:
                break
            for row in rows:
                face = _register_face(row)
                if face is not None:
                    ids.append(face.face_id)
                    faces.append(face)
                    blobs.append(row[-1])
            after = int(rows[-1].face_id)
        return np.asarray(ids, dtype=np.int64), faces, decode_vectors(blobs, dimension)

    def describe(self, face_ids: Sequence[int]) -> dict[int, RegisterFace]:
        """Return what a pair records of each face that exists and is in a register."""
        out = {}
        for chunk in chunks(face_ids):
            for row in self._session.execute(_in_context().where(Face.id.in_(chunk))).all():
                face = _register_face(row)
                if face is not None:
                    out[face.face_id] = face
        return out

    def count(self, waiting_only: bool = False) -> int:
        """Return how many faces belong to persons in a register (or still wait)."""
        query = (
            select(func.count(Face.id))
            .join(Person, Person.id == Face.person_id)
            .where(Person.status.in_(_IN_REGISTER))
        )
        if waiting_only:
            query = query.where(Face.crossmatched_at.is_(None))
        return int(self._session.execute(query).scalar_one())

    def mark_matched(self, face_ids: Sequence[int], at: datetime) -> None:
        for chunk in chunks(face_ids):
            self._session.execute(update(Face).where(Face.id.in_(chunk)).values(crossmatched_at=at))

    def reset(self, person_id: str) -> None:
        """Make a person's faces wait for cross-matching again (their register changed)."""
        self._session.execute(
            update(Face).where(Face.person_id == person_id).values(crossmatched_at=None)
        )

    def _read(self, query: Any, dimension: int) -> tuple[list[RegisterFace], NDArray[np.float32]]:
        kept = [
            (face, row[-1])
            for row in self._session.execute(query).all()
            if (face := _register_face(row)) is not None
        ]
        return [f for f, _ in kept], decode_vectors([v for _, v in kept], dimension)


def _in_context(*extra: Any) -> Any:
    """Return a Select of what a pair records of a face (and ``extra``), each column named
    as the field of ``RegisterFace`` it fills."""
    return (
        select(
            Face.id.label("face_id"),
            Face.person_id,
            Face.photo_id,
            Person.status,
            Photo.taken_at,
            Photo.age_at_photo.label("declared_age"),
            Face.age.label("estimated_age"),
            Face.gender.label("estimated_gender"),
            Person.gender,
            Person.birth_date,
            Person.birth_year,
            *extra,
        )
        .join(Person, Person.id == Face.person_id)
        .join(Photo, Photo.id == Face.photo_id)
    )


def _with_vector(generation: int) -> Any:
    return (
        _in_context(Embedding.vector)
        .join(Embedding, (Embedding.face_id == Face.id) & (Embedding.generation == generation))
        .where(Person.status.in_(_IN_REGISTER))
    )


def _register_face(row: Any) -> RegisterFace | None:
    register = REGISTER_OF.get(row.status)
    if register is None:
        return None
    return RegisterFace(row.face_id, row.person_id, row.photo_id, register, row.taken_at,
                        row.declared_age, row.estimated_age, row.estimated_gender, row.gender,
                        row.birth_date, row.birth_year)  # fmt: skip

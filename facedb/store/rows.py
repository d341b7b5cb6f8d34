"""Rows to records: the one place a table row becomes the record services see."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.orm import Session

from facedb.errors import NotFound
from facedb.records import FaceRecord, PersonRecord, PhotoRecord
from facedb.store.models import Face, Person, Photo

_Row = TypeVar("_Row")
T = TypeVar("T")
IN_CHUNK = 5000  # ids per IN (...): SQLite takes at most 32766 bound parameters


def get_or_404(session: Session, model: type[_Row], key: object, label: str) -> _Row:
    """Return the row with this primary key, or raise NotFound naming what is missing."""
    row = session.get(model, key)
    if row is None:
        raise NotFound(f"no {label} with id {key}")
    return row


def chunks(ids: Sequence[T], size: int = IN_CHUNK) -> list[list[T]]:
    """Return ``ids`` in lists short enough for one IN (...)."""
    items = list(ids)
    return [items[start : start + size] for start in range(0, len(items), size)]


def person_record(row: Person) -> PersonRecord:
    return PersonRecord.model_validate(row)


def face_record(row: Face) -> FaceRecord:
    return FaceRecord.model_validate(row)


def photo_record(row: Photo, faces: Sequence[Face]) -> PhotoRecord:
    """The photo's columns (its ``faces`` relationship never loads lazily) and its faces."""
    derived = ("faces", "age_check")  # the faces read apart; the check is agecheck's
    columns = {n: getattr(row, n) for n in PhotoRecord.model_fields if n not in derived}
    return PhotoRecord.model_validate({**columns, "faces": [face_record(f) for f in faces]})


# --- vectors: float32 little-endian, L2-normalised ---------------------------------------
def encode_vector(vector: NDArray[np.float32]) -> bytes:
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def decode_vectors(blobs: Sequence[bytes], dimension: int) -> NDArray[np.float32]:
    if not blobs:
        return np.zeros((0, dimension), dtype=np.float32)
    joined = np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), dimension)
    return np.ascontiguousarray(joined, dtype=np.float32)

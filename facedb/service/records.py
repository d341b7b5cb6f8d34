"""Plain records the services hand back: no ORM row leaves a service (nothing lazy-loads)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from facedb.pipeline.types import Box
from facedb.store.models import Face, Person, Photo


def utc(moment: datetime) -> datetime:
    """Return the time as UTC-aware (SQLite hands back naive UTC datetimes)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class PersonRecord:
    id: str
    external_ref: str | None
    name: str
    gender: str | None
    birth_date: date | None
    birth_year: int | None
    status: str
    attributes: dict[str, Any]
    linked_person_id: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: Person) -> PersonRecord:
        return cls(
            id=row.id,
            external_ref=row.external_ref,
            name=row.name,
            gender=row.gender,
            birth_date=row.birth_date,
            birth_year=row.birth_year,
            status=row.status,
            attributes=dict(row.attributes or {}),
            linked_person_id=row.linked_person_id,
            created_at=utc(row.created_at),
            updated_at=utc(row.updated_at),
        )


@dataclass(frozen=True)
class FaceRecord:
    id: int
    photo_id: str
    person_id: str
    box: Box
    landmarks: dict[str, Any]
    confidence: float
    age: float | None
    gender: str | None
    gender_probability: float | None

    @classmethod
    def of(cls, row: Face) -> FaceRecord:
        return cls(
            id=int(row.id),
            photo_id=row.photo_id,
            person_id=row.person_id,
            box=Box(row.box_x, row.box_y, row.box_w, row.box_h),
            landmarks=dict(row.landmarks or {}),
            confidence=row.confidence,
            age=row.age,
            gender=row.gender,
            gender_probability=row.gender_probability,
        )


@dataclass(frozen=True)
class PhotoRecord:
    id: str
    person_id: str
    sha256: str
    media_type: str
    width: int
    height: int
    taken_at: date | None
    age_at_photo: float | None
    created_at: datetime
    faces: list[FaceRecord] = field(default_factory=list)

    @classmethod
    def of(cls, row: Photo, faces: list[Face]) -> PhotoRecord:
        return cls(
            id=row.id,
            person_id=row.person_id,
            sha256=row.sha256,
            media_type=row.media_type,
            width=row.width,
            height=row.height,
            taken_at=row.taken_at,
            age_at_photo=row.age_at_photo,
            created_at=utc(row.created_at),
            faces=[FaceRecord.of(f) for f in faces],
        )

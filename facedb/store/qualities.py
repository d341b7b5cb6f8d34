"""Each face's stored image quality, by person: what a register's health is read from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from facedb.domain import PersonStatus
from facedb.records import FaceRecord, QualityRecord
from facedb.store.models import Face, Person


@dataclass(frozen=True)
class PersonFaces:
    """A person and the qualities of their faces (None: stored before it was measured)."""

    person_id: str
    name: str
    external_ref: str | None
    status: PersonStatus
    qualities: list[QualityRecord | None]


class FaceQualities:
    def __init__(self, session: Session) -> None:
        self._session = session

    def of_person(self, person_id: str) -> list[QualityRecord | None]:
        """Return the qualities of one person's faces, oldest first."""
        rows = self._session.execute(
            select(Face.quality).where(Face.person_id == person_id).order_by(Face.id)
        ).scalars()
        return [_record(q) for q in rows]

    def of_faces(self, face_ids: list[int]) -> dict[int, QualityRecord]:
        """Return the measured qualities of these faces (a face not measured is left out)."""
        if not face_ids:
            return {}
        rows = self._session.execute(
            select(Face.id, Face.quality).where(Face.id.in_(face_ids), Face.quality.is_not(None))
        )
        return {face_id: QualityRecord.model_validate(q) for face_id, q in rows if q is not None}

    def unmeasured(self, limit: int) -> list[FaceRecord]:
        """Return up to ``limit`` faces stored before quality was measured, oldest first."""
        rows = self._session.execute(
            select(Face).where(Face.quality.is_(None)).order_by(Face.id).limit(limit)
        ).scalars()
        return [FaceRecord.model_validate(row) for row in rows]

    def record(self, face_id: int, quality: dict[str, Any]) -> None:
        """Store a face's measured quality (``Quality.as_dict()``)."""
        self._session.execute(update(Face).where(Face.id == face_id).values(quality=quality))

    def by_person(self, statuses: frozenset[PersonStatus] | None = None) -> list[PersonFaces]:
        """Return every person (of ``statuses``, or all) with their faces' qualities, by
        name; a person without a face is listed with none."""
        query = (
            select(
                Person.id, Person.name, Person.external_ref, Person.status, Face.id, Face.quality
            )
            .outerjoin(Face, Face.person_id == Person.id)
            .order_by(Person.name, Person.id, Face.id)
        )
        if statuses is not None:
            query = query.where(Person.status.in_(list(statuses)))
        out: dict[str, PersonFaces] = {}
        for person_id, name, ref, status, face_id, quality in self._session.execute(query):
            entry = out.setdefault(person_id, PersonFaces(person_id, name, ref, status, []))
            if face_id is not None:
                entry.qualities.append(_record(quality))
        return list(out.values())


def _record(stored: dict[str, Any] | None) -> QualityRecord | None:
    return QualityRecord.model_validate(stored) if stored is not None else None

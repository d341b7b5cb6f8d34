"""Each face's stored image quality, by person: what a register's health is read from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from facedb.domain import PersonStatus
from facedb.records import QualityRecord
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
        return {face_id: QualityRecord.model_validate(q) for face_id, q in rows}

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

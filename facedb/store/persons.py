"""Persons: the identity records."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from facedb.domain import ChangeOp, PersonStatus
from facedb.errors import Conflict, NotFound
from facedb.records import PersonFilter, PersonRecord
from facedb.store.models import Change, Face, Person, Photo, utcnow
from facedb.store.rows import chunks, get_or_404, person_record


class PersonRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, **fields: Any) -> PersonRecord:
        """Insert a person; a taken ``external_ref`` is a Conflict."""
        person = Person(**fields)
        self._session.add(person)
        self._flush(fields.get("external_ref"))
        return person_record(person)

    def get(self, person_id: str) -> PersonRecord:
        return person_record(get_or_404(self._session, Person, person_id, "person"))

    def find(self, person_id: str) -> PersonRecord | None:
        row = self._session.get(Person, person_id)
        return person_record(row) if row is not None else None

    def by_external_ref(self, external_ref: str) -> PersonRecord | None:
        row = self._session.execute(
            select(Person).where(Person.external_ref == external_ref)
        ).scalar_one_or_none()
        return person_record(row) if row is not None else None

    def existing(self, person_ids: Sequence[str]) -> set[str]:
        """Return which of these person ids exist."""
        found: set[str] = set()
        for chunk in chunks(person_ids):
            found |= set(
                self._session.execute(select(Person.id).where(Person.id.in_(chunk))).scalars()
            )
        return found

    def many(self, person_ids: list[str]) -> dict[str, PersonRecord]:
        if not person_ids:
            return {}
        rows = self._session.execute(select(Person).where(Person.id.in_(person_ids))).scalars()
        return {row.id: person_record(row) for row in rows}

    def lock(self, person_id: str) -> PersonRecord:
        """Return the person, holding a shared row lock until commit (PostgreSQL).

        A photo stored under this lock cannot race the person's deletion: the delete waits
        for it, or has committed and the person is not found.
        """
        person = self._session.execute(
            select(Person).where(Person.id == person_id).with_for_update(read=True)
        ).scalar_one_or_none()
        if person is None:
            raise NotFound(f"no person with id {person_id}")
        return person_record(person)

    def page(self, where: PersonFilter, limit: int, offset: int) -> tuple[list[PersonRecord], int]:
        """Return one page of persons (newest first) and the total matching the filter."""
        query = select(Person)
        if where.status:
            query = query.where(Person.status == where.status)
        if where.name:  # a substring, taken literally: % and _ match themselves
            name = where.name.lower()
            query = query.where(func.lower(Person.name).contains(name, autoescape=True))
        if where.external_ref:
            query = query.where(Person.external_ref == where.external_ref)
        total = self._session.execute(
            select(func.count()).select_from(query.subquery())
        ).scalar_one()
        page = self._session.execute(
            query.order_by(Person.created_at.desc(), Person.id).limit(limit).offset(offset)
        )
        return [person_record(p) for p in page.scalars()], int(total)

    def ids(self, statuses: frozenset[PersonStatus] | None = None) -> list[str]:
        """Return every person's id (oldest first), or of those with one of ``statuses``."""
        query = select(Person.id).order_by(Person.created_at, Person.id)
        if statuses is not None:
            query = query.where(Person.status.in_(list(statuses)))
        return list(self._session.execute(query).scalars())

    def update(self, person_id: str, fields: Mapping[str, Any]) -> PersonRecord:
        """Set the fields given; a taken ``external_ref`` is a Conflict."""
        person = get_or_404(self._session, Person, person_id, "person")
        for key, value in fields.items():
            setattr(person, key, value)
        self._flush(fields.get("external_ref"))
        return person_record(person)

    def count_with_faces(self) -> int:
        """How many persons have at least one face (a search's register, before filters)."""
        query = select(func.count(func.distinct(Face.person_id)))
        return int(self._session.execute(query).scalar_one())

    def earliest_photo_date(self, person_id: str) -> date | None:
        return self._session.execute(
            select(func.min(Photo.taken_at)).where(Photo.person_id == person_id)
        ).scalar_one_or_none()

    def link_erased(self, person_id: str, erased_id: str) -> None:
        """The person linked to this one is being erased: clear the link, note when."""
        person = self._session.get(Person, person_id)
        if person is not None and person.linked_person_id == erased_id:
            person.linked_person_id = None
            person.linked_erased_at = utcnow()

    def delete(self, person_id: str) -> list[int]:
        """Delete a person with their photos, faces and embeddings, logging the index
        removals (their pairs are the pair repository's: ``erase_side``); return the face
        ids."""
        get_or_404(self._session, Person, person_id, "person")
        face_ids = [
            int(i)
            for i in self._session.execute(
                select(Face.id).where(Face.person_id == person_id)
            ).scalars()
        ]
        self._session.add_all([Change(op=ChangeOp.REMOVE, face_id=f) for f in face_ids])
        self._session.execute(delete(Person).where(Person.id == person_id))
        return face_ids

    def lock_links(self, person_ids: tuple[str, str]) -> dict[str, str | None]:
        """Return whom each of these persons is linked to, their rows locked until commit
        (two confirmations of one person cannot both pass the check). Erased persons are
        absent."""
        rows = self._session.execute(
            select(Person.id, Person.linked_person_id)
            .where(Person.id.in_(person_ids))
            .order_by(Person.id)
            .with_for_update()
        ).tuples()
        return dict(rows.all())

    def link(self, pair: tuple[str, str], status: PersonStatus) -> dict[str, PersonStatus]:
        """Link two persons to each other and give both ``status``; return their statuses
        before. Conflict when either was deleted."""
        first, second = (self._session.get(Person, person_id) for person_id in pair)
        if first is None or second is None:
            raise Conflict("one of the two persons was deleted; the pair can only be rejected")
        before = {first.id: first.status, second.id: second.status}
        for person, other in ((first, second), (second, first)):
            person.status = status
            person.linked_person_id = other.id
            person.linked_erased_at = None
        return before

    def unlink(self, pair: tuple[str, str], statuses: dict[str, PersonStatus]) -> None:
        """Undo ``link``: clear the links and restore the statuses. A person deleted, or
        linked elsewhere since, is left as it is."""
        for person_id, other_id in (pair, pair[::-1]):
            person = self._session.get(Person, person_id)
            if person is None or person.linked_person_id != other_id:
                continue
            person.linked_person_id = None
            person.status = statuses.get(person_id, person.status)

    def _flush(self, external_ref: object) -> None:
        """Flush, turning a duplicate external reference into Conflict."""
        try:
            self._session.flush()
        except IntegrityError as exc:
            self._session.rollback()
            raise Conflict(f"a person with external_ref {external_ref!r} exists") from exc

"""Person records: the rules a record obeys, and create, read, update, erase."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from facedb.domain import register_of
from facedb.errors import InvalidInput
from facedb.index.face_index import FaceIndex
from facedb.records import PersonFilter, PersonRecord
from facedb.store.unit import Store

EARLIEST_BIRTH = date(1900, 1, 1)
MAX_ATTRIBUTES_BYTES = 16 * 1024


def check_person(fields: dict[str, Any]) -> None:
    """Raise InvalidInput naming the field unless a person's fields agree with each other."""
    birth_date: date | None = fields.get("birth_date")
    birth_year: int | None = fields.get("birth_year")
    today = date.today()
    if birth_date is not None and not EARLIEST_BIRTH <= birth_date <= today:
        raise InvalidInput(
            f"birth_date must lie between {EARLIEST_BIRTH} and today", field="birth_date"
        )
    if birth_year is not None and not EARLIEST_BIRTH.year <= birth_year <= today.year:
        raise InvalidInput(
            f"birth_year must lie between {EARLIEST_BIRTH.year} and {today.year}",
            field="birth_year",
        )
    if birth_date is not None and birth_year is not None and birth_date.year != birth_year:
        raise InvalidInput(
            f"birth_year {birth_year} contradicts birth_date {birth_date}; send one, or both "
            "agreeing",
            field="birth_year",
        )
    attributes = fields.get("attributes")
    if attributes is not None:
        size = len(json.dumps(attributes, ensure_ascii=False).encode())
        if size > MAX_ATTRIBUTES_BYTES:
            raise InvalidInput(
                f"attributes take {size} bytes as JSON; the limit is {MAX_ATTRIBUTES_BYTES}",
                field="attributes",
            )


def check_taken_at(taken_at: date, birth_date: date | None, birth_year: int | None) -> None:
    """Raise InvalidInput unless a photo date is possible for a person born then."""
    if taken_at > date.today():
        raise InvalidInput(f"taken_at {taken_at} is in the future", field="taken_at")
    born = birth_date or (date(birth_year, 1, 1) if birth_year else None)
    if born is not None and taken_at < born:
        raise InvalidInput(
            f"taken_at {taken_at} is before the person's birth ({birth_date or birth_year})",
            field="taken_at",
        )


@dataclass(frozen=True)
class PersonService:
    """Create, read, update and erase person records. A change of register makes the
    person's faces wait for cross-matching in the new one, and ``sweep`` (the cross-matcher's)
    matches them at once."""

    store: Store
    index: FaceIndex
    sweep: Callable[[], int]

    def create(self, fields: dict[str, Any]) -> PersonRecord:
        check_person(fields)
        with self.store.unit() as unit:
            return unit.persons.add(**fields)

    def get(self, person_id: str) -> PersonRecord:
        with self.store.unit() as unit:
            return unit.persons.get(person_id)

    def page(
        self, where: PersonFilter | None = None, limit: int = 50, offset: int = 0
    ) -> tuple[list[PersonRecord], int]:
        """Return one page of persons (newest first) and how many match the filter."""
        with self.store.unit() as unit:
            return unit.persons.page(where or PersonFilter(), limit, offset)

    def update(self, person_id: str, fields: dict[str, Any]) -> PersonRecord:
        """Change some fields; the merged record must obey the same rules as a new one."""
        if "name" in fields and fields["name"] is None:
            raise InvalidInput("name cannot be null", field="name")
        if "attributes" in fields and fields["attributes"] is None:
            fields = {**fields, "attributes": {}}  # null clears them
        with self.store.unit() as unit:
            person = unit.persons.get(person_id)
            merged = {
                "birth_date": fields.get("birth_date", person.birth_date),
                "birth_year": fields.get("birth_year", person.birth_year),
                "attributes": fields.get("attributes"),
            }
            check_person(merged)
            earliest = unit.persons.earliest_photo_date(person_id)
            if earliest is not None and ("birth_date" in fields or "birth_year" in fields):
                try:
                    check_taken_at(earliest, merged["birth_date"], merged["birth_year"])
                except InvalidInput as exc:
                    raise InvalidInput(
                        f"a photo of this person is dated {earliest}, before that birth",
                        field="birth_date" if "birth_date" in fields else "birth_year",
                    ) from exc
            updated = unit.persons.update(person_id, fields)
            moved = register_of(updated.status) != register_of(person.status)
            if moved:
                unit.registers.reset(person_id)  # match in the new register
        if moved:
            self.sweep()
        return updated

    def delete(self, person_id: str) -> int:
        """Erase a person, their photos, faces and pending candidate pairs (decided ones
        stay, as history); the index drops the faces before this returns."""
        with self.store.unit() as unit:
            removed = unit.persons.delete(person_id)
        self.index.catch_up()
        return len(removed)

"""Person records: the rules a record obeys, and create, read, update, erase; the dates of
their photos."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from facedb.agecheck import best_fit, checked
from facedb.ages import age_on
from facedb.domain import AgeVerdict, AuditAction, register_of
from facedb.errors import InvalidInput
from facedb.index.face_index import FaceIndex
from facedb.records import Caller, PersonFields, PersonFilter, PersonRecord, PhotoRecord
from facedb.sizes import readable
from facedb.store.unit import Store, Unit
from facedb.trail.audit import LOCAL, AuditService

EARLIEST_BIRTH = date(1900, 1, 1)
MAX_ATTRIBUTES_BYTES = 16 * 1024


# Text fields stored without surrounding white space.
TRIMMED: tuple[Literal["name", "external_ref"], ...] = ("name", "external_ref")


def trimmed(fields: PersonFields) -> PersonFields:
    """Return the fields with the name and case number trimmed; InvalidInput naming the
    field when nothing is left of one (a blank name cannot be read, opened or erased)."""
    out = fields.copy()
    for name in TRIMMED:
        value = out.get(name)
        if isinstance(value, str):
            out[name] = value = value.strip()
            if not value:
                raise InvalidInput(f"{name} is blank: give it some text", field=name)
    return out


def check_storable(value: Any, field: str) -> None:
    """Raise InvalidInput naming the field unless a value can be stored as it was sent on
    both databases: no NUL character, no lone surrogate, no NaN or infinite number."""
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidInput(f"{field} holds a NUL character", field=field)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInput(
                f"{field} holds a lone surrogate (half of a character): send valid Unicode",
                field=field,
            ) from None
    elif isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput(f"{field} is {value}: numbers must be finite", field=field)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_storable(key, field)  # a key that passes can name the field below it
            check_storable(item, f"{field}.{key}")
    elif isinstance(value, list):
        for item in value:
            check_storable(item, field)


def check_person(fields: PersonFields) -> None:
    """Raise InvalidInput naming the field unless a person's fields agree with each other."""
    for name in ("name", "external_ref", "attributes"):
        check_storable(fields.get(name), name)
    birth_date: date | None = fields.get("birth_date")
    birth_year: int | None = fields.get("birth_year")
    today = date.today()
    if birth_date is not None and not EARLIEST_BIRTH <= birth_date <= today:
        raise InvalidInput(
            f"the birth date {birth_date} is not possible: give a date between "
            f"{EARLIEST_BIRTH} and today",
            field="birth_date",
        )
    if birth_year is not None and not EARLIEST_BIRTH.year <= birth_year <= today.year:
        raise InvalidInput(
            f"the birth year {birth_year} is not possible: give a year between "
            f"{EARLIEST_BIRTH.year} and {today.year}",
            field="birth_year",
        )
    if birth_date is not None and birth_year is not None and birth_date.year != birth_year:
        raise InvalidInput(
            f"the birth year {birth_year} is not the year of the birth date {birth_date}: "
            "give the birth date alone, or a year that agrees with it",
            field="birth_year",
        )
    attributes = fields.get("attributes")
    if attributes is not None:
        size = len(json.dumps(attributes, ensure_ascii=False).encode())
        if size > MAX_ATTRIBUTES_BYTES:
            raise InvalidInput(
                f"the details take {readable(size)} as JSON; the limit is "
                f"{readable(MAX_ATTRIBUTES_BYTES)}",
                field="attributes",
            )


def check_photo_date(taken_at: date) -> None:
    """Raise InvalidInput unless a photo date lies between 1900-01-01 and today."""
    if not EARLIEST_BIRTH <= taken_at <= date.today():
        raise InvalidInput(
            f"the photo date {taken_at} is not possible: give a date between "
            f"{EARLIEST_BIRTH} and today",
            field="taken_at",
        )


def check_taken_at(taken_at: date, birth_date: date | None, birth_year: int | None) -> None:
    """Raise InvalidInput unless a photo date is possible for a person born then."""
    check_photo_date(taken_at)
    born = birth_date or (date(birth_year, 1, 1) if birth_year else None)
    if born is not None and taken_at < born:
        raise InvalidInput(
            f"the photo date {taken_at} is before the person's birth ({birth_date or birth_year})",
            field="taken_at",
        )


@dataclass(frozen=True)
class PersonService:
    """Create, read, update and erase person records, each write audited. A change of
    register makes the person's faces wait for cross-matching in the new one (``sweep``
    matches them at once); a change of birth or gender checks their photos' declared ages
    and their undecided pairs again (``recheck``)."""

    store: Store
    index: FaceIndex
    audit: AuditService
    sweep: Callable[[], int]
    recheck: Callable[[str], None]

    def create(self, fields: PersonFields, caller: Caller = LOCAL) -> PersonRecord:
        with self.audit.audited(AuditAction.PERSON_CREATE, caller) as trail:
            fields = trimmed(fields)
            check_person(fields)
            with self.store.unit() as unit:
                person = unit.persons.add(**fields)
            trail.results = [{"person_id": person.id}]
        return person

    def get(self, person_id: str) -> PersonRecord:
        with self.store.unit() as unit:
            return unit.persons.get(person_id)

    def page(
        self, where: PersonFilter | None = None, limit: int = 50, offset: int = 0
    ) -> tuple[list[PersonRecord], int]:
        """Return one page of persons (newest first) and how many match the filter."""
        with self.store.unit() as unit:
            return unit.persons.page(where or PersonFilter(), limit, offset)

    def update(self, person_id: str, fields: PersonFields, caller: Caller = LOCAL) -> PersonRecord:
        """Change some fields; the merged record must obey the same rules as a new one. The
        audit keeps each changed field before and after."""
        with self.audit.audited(AuditAction.PERSON_UPDATE, caller) as trail:
            fields = trimmed(fields)
            updated, before = self._update(person_id, fields)
            changed = {k: v for k, v in fields.items() if getattr(before, k) != getattr(updated, k)}
            trail.results = [{
                "person_id": person_id,
                "changed": {k: {"before": _plain(getattr(before, k)), "after": _plain(v)}
                            for k, v in changed.items()},
            }]  # fmt: skip
        if register_of(updated.status) != register_of(before.status):
            self.sweep()
        if changed.keys() & REDATING:
            self.recheck(person_id)
        return updated

    def _update(self, person_id: str, fields: PersonFields) -> tuple[PersonRecord, PersonRecord]:
        if "name" in fields and fields["name"] is None:
            raise InvalidInput("name cannot be null", field="name")
        if "attributes" in fields and fields["attributes"] is None:
            fields = {**fields, "attributes": {}}  # null clears them
        with self.store.unit() as unit:
            person = unit.persons.get(person_id)
            merged: PersonFields = {
                **fields,
                "birth_date": fields.get("birth_date", person.birth_date),
                "birth_year": fields.get("birth_year", person.birth_year),
            }
            check_person(merged)
            earliest = unit.persons.earliest_photo_date(person_id)
            if earliest is not None and ("birth_date" in fields or "birth_year" in fields):
                try:
                    check_taken_at(earliest, merged.get("birth_date"), merged.get("birth_year"))
                except InvalidInput as exc:
                    raise InvalidInput(
                        f"a photo of this person is dated {earliest}, before that birth",
                        field="birth_date" if "birth_date" in fields else "birth_year",
                    ) from exc
            updated = unit.persons.update(person_id, fields)
            if register_of(updated.status) != register_of(person.status):
                unit.registers.reset(person_id)  # match in the new register
            if "birth_date" in fields or "birth_year" in fields:
                redate_photos(unit, updated)
        return updated, person

    def delete(self, person_id: str, caller: Caller = LOCAL) -> int:
        """Erase a person with their photos, faces and undecided candidate pairs. Decided
        pairs stay, as history, keeping of this side only the person id; a person linked to
        this one is told the link's record was erased. The index drops the faces before
        this returns (during an index outage, before any search is answered again)."""
        with self.audit.audited(AuditAction.PERSON_DELETE, caller) as trail:
            with self.store.unit(serialized=True) as unit:  # never beside a decision
                person = unit.persons.get(person_id)
                if person.linked_person_id is not None:
                    unit.persons.link_erased(person.linked_person_id, person_id)
                unit.pairs.erase_side(person_id)
                removed = unit.persons.delete(person_id)
            trail.results = [{"person_id": person_id, "faces": len(removed),
                              "linked_person_id": person.linked_person_id}]  # fmt: skip
        self.index.apply_own_writes()
        return len(removed)

    def redate_photo(
        self, photo_id: str, taken_at: date | None, caller: Caller = LOCAL
    ) -> PhotoRecord:
        """Change the date a photo was taken (None: unknown), audited before and after. The
        photo's declared age and age conflict follow, and so do the person's undecided
        pairs: each side's date and age, the years between and the age check."""
        with self.audit.audited(AuditAction.PHOTO_UPDATE, caller) as trail:
            with self.store.unit() as unit:
                photo = unit.photos.get(photo_id)
                person = unit.persons.get(photo.person_id)
                declared = None
                if taken_at is not None:
                    check_taken_at(taken_at, person.birth_date, person.birth_year)
                    declared = age_on(taken_at, person.birth_date, person.birth_year)
                conflict = age_conflict(declared, [f.age for f in photo.faces])
                unit.photos.set_date(photo_id, taken_at, declared, conflict)
                updated = unit.photos.get(photo_id)
            trail.results = [{"photo_id": photo_id, "person_id": person.id,
                              "taken_at": {"before": _plain(photo.taken_at),
                                           "after": _plain(taken_at)}}]  # fmt: skip
        if taken_at != photo.taken_at:
            self.recheck(person.id)
        return checked(updated)


# Fields whose change alters the age check or the gender flag of a person's pairs.
REDATING = frozenset({"birth_date", "birth_year", "gender"})


def redate_photos(unit: Unit, person: PersonRecord) -> None:
    """Work out each dated photo's declared age from the person's birth again, and whether it
    contradicts its faces' estimated ages."""
    for photo in unit.photos.of_person(person.id):
        if photo.taken_at is None:
            continue
        declared = age_on(photo.taken_at, person.birth_date, person.birth_year)
        unit.photos.set_declared_age(
            photo.id, declared, age_conflict(declared, [f.age for f in photo.faces])
        )


def age_conflict(declared: float | None, estimated: Sequence[float | None]) -> bool:
    """Whether a declared age fits none of a photo's faces' estimated ages (no declared age,
    or no estimate: no conflict)."""
    best = best_fit(declared, estimated)
    return best is not None and best.verdict is not AgeVerdict.CONSISTENT


def _plain(value: Any) -> Any:
    """Return a value as the audit's JSON keeps it."""
    return value.isoformat() if isinstance(value, date) else value

"""Register manifests: one row per photo, read from CSV or JSON Lines, written by export.

Columns (CSV header or JSON keys):
- ``external_ref`` (the case number: rows sharing it are one person) or ``person_id``
  (written by `facedb export`; it keeps a person's id across databases); one is required.
- ``name`` (required for a new person), ``status``, ``gender``, ``birth_date``
  (YYYY-MM-DD), ``birth_year``, ``linked_person_id``: the person's record.
- ``path``: the photo, relative to the manifest's folder, which it may not leave
  (``facedb.bulk.source``; a row without one gives the person's record only);
  ``taken_at``: its date.
- ``linked_person_id`` is what an export says a person was linked to; an import never sets
  a link from it: links come from the confirmed decisions an export carries
  (``matches.jsonl``), each checked as a confirmation is.
- any other column: a free attribute of the person (JSON Lines may also give an
  ``attributes`` object). Empty cells say nothing.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from facedb.bulk.source import ImportSource
from facedb.domain import Gender, PersonStatus
from facedb.errors import InvalidInput
from facedb.records import EXTERNAL_REF_MAX_LENGTH, NAME_MAX_LENGTH, PersonFields

PERSON_FIELDS = ("name", "status", "gender", "birth_date", "birth_year")
INFORMATIONAL = ("linked_person_id",)  # read from an export, never written by an import
KEY_FIELDS = ("person_id", "external_ref")
PHOTO_FIELDS = ("path", "taken_at")
COLUMNS = (*KEY_FIELDS, *PERSON_FIELDS, *INFORMATIONAL, *PHOTO_FIELDS)


@dataclass
class Row:
    """One manifest line: a photo of a person, parsed, or the error that refuses it."""

    line: int
    key: str  # person_id or external_ref, whichever identifies the person
    person_id: str | None
    external_ref: str | None
    person: PersonFields = field(default_factory=PersonFields)  # the record fields it gives
    raw_path: str = ""  # the photo as the manifest names it; empty: the record only
    taken_at: date | None = None
    error: InvalidInput | None = None


def read_manifest(source: ImportSource) -> Iterator[Row]:
    """Yield every row of a ``.csv`` or ``.jsonl`` manifest, in file order."""
    for line, record in _records(source):
        yield parse_row(line, record)


def _records(source: ImportSource) -> Iterator[tuple[int, dict[str, Any]]]:
    manifest = source.name
    suffix = Path(manifest).suffix.lower()
    if suffix == ".csv":
        with source.manifest() as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames or not set(KEY_FIELDS) & set(reader.fieldnames):
                raise InvalidInput(
                    f"{manifest}: the header must name external_ref (or person_id) and path; "
                    f"it names {', '.join(reader.fieldnames or []) or 'nothing'}"
                )
            for record in reader:
                yield reader.line_num, {k: v for k, v in record.items() if k is not None}
    elif suffix in (".jsonl", ".ndjson", ".json"):
        with source.manifest() as handle:
            for line, text in enumerate(handle, start=1):
                if not text.strip():
                    continue
                try:
                    record = json.loads(text)
                except json.JSONDecodeError as exc:
                    yield line, {"__error__": f"not JSON: {exc.msg}"}
                    continue
                yield line, record if isinstance(record, dict) else {"__error__": "not an object"}
    else:
        raise InvalidInput(f"{manifest}: a manifest is a .csv or a .jsonl file")


def parse_row(line: int, record: dict[str, Any]) -> Row:
    """Return the row's fields, or a row carrying the InvalidInput that refuses it."""
    person_id = _text(record.get("person_id"))
    external_ref = _text(record.get("external_ref"))
    row = Row(line, person_id or external_ref or "", person_id, external_ref)
    try:
        if "__error__" in record:
            raise InvalidInput(record["__error__"])
        if not row.key:
            raise InvalidInput("the row has no external_ref (case number)", field="external_ref")
        row.raw_path = _text(record.get("path")) or ""
        row.taken_at = _date(record.get("taken_at"), "taken_at")
        row.person = _person_fields(record, external_ref)
    except InvalidInput as exc:
        row.error = exc
    return row


def _person_fields(record: dict[str, Any], external_ref: str | None) -> PersonFields:
    fields = PersonFields()
    if external_ref:
        fields["external_ref"] = _bounded(external_ref, "external_ref", EXTERNAL_REF_MAX_LENGTH)
    if name := _text(record.get("name")):
        fields["name"] = _bounded(name, "name", NAME_MAX_LENGTH)
    if status := _text(record.get("status")):
        fields["status"] = _choice(PersonStatus, status, "status")
    if gender := _text(record.get("gender")):
        fields["gender"] = _choice(Gender, gender, "gender")
    if (birth_date := _date(record.get("birth_date"), "birth_date")) is not None:
        fields["birth_date"] = birth_date
    if (year := _text(record.get("birth_year"))) is not None:
        try:
            fields["birth_year"] = int(year)
        except ValueError:
            raise InvalidInput(f"birth_year {year!r} is not a year", field="birth_year") from None
    attributes = record.get("attributes")
    extra = dict(attributes) if isinstance(attributes, dict) else {}
    for key, value in record.items():
        if key not in COLUMNS and key != "attributes" and _text(value) is not None:
            extra[str(key)] = value if not isinstance(value, str) else value.strip()
    if extra:
        if any("\x00" in f"{k}{v}" for k, v in extra.items()):
            raise InvalidInput("an attribute holds a NUL character", field="attributes")
        fields["attributes"] = extra
    return fields


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    if "\x00" in text:
        raise InvalidInput("the row holds a NUL character")
    return text or None


def _bounded(value: str, name: str, limit: int) -> str:
    if len(value) > limit:
        raise InvalidInput(f"{name} is longer than {limit} characters", field=name)
    return value


def _choice(kind: Any, value: str, name: str) -> Any:
    try:
        return kind(value.lower())
    except ValueError:
        allowed = ", ".join(v.value for v in kind)
        raise InvalidInput(f"{name} {value!r} is not one of {allowed}", field=name) from None


def _date(value: Any, name: str) -> date | None:
    text = _text(value)
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{name} {text!r} is not a date (YYYY-MM-DD)", field=name) from None

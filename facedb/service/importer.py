"""Bulk import of a register from a manifest (`facedb import`): resumable and idempotent.

Each person is created (or updated) through the same rules as the API, each photo goes
through the same enrollment (validation, analysis, one transaction per photo, the change
log that running services follow). The case number (``external_ref``, or ``person_id``)
identifies a person and a photo's bytes identify the photo, so a run interrupted at any
point (Ctrl-C, kill -9) and started again finishes the work and duplicates nothing.

Photos are analysed one at a time and embedded ``batch`` at a time in one model call.
New faces are left for cross-matching to the running service's sweeper or to
`facedb crossmatch`, which matches a whole import at once.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from facedb.domain import AuditAction, MatchState, PersonChange, RowOutcome, UploadStatus
from facedb.errors import (
    ConflictingRecord,
    FaceDBError,
    FileUnreadable,
    ImageError,
    InvalidInput,
    NotFound,
)
from facedb.pipeline.decode import read_header
from facedb.service import audit
from facedb.service.audit import LOCAL, Caller
from facedb.service.context import FaceDB
from facedb.service.enrollment import Prepared, commit, prepare
from facedb.service.exporter import MATCH_COLUMNS, MATCHES
from facedb.service.manifest import Row, read_manifest
from facedb.service.persons import check_person, check_taken_at, create_person, update_person
from facedb.service.uploads import Upload
from facedb.store import repository as repo
from facedb.store.db import transaction
from facedb.store.models import MatchCandidate, Person

BATCH = 16


@dataclass
class RowResult:
    """One manifest row's outcome, as the report CSV gives it."""

    line: int
    key: str
    path: str
    outcome: RowOutcome
    person: PersonChange = PersonChange.NONE
    person_id: str | None = None
    photo_id: str | None = None
    error: FaceDBError | None = None

    def as_row(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "case": self.key,
            "path": self.path,
            "outcome": self.outcome.value,
            "person": self.person.value,
            "person_id": self.person_id or "",
            "photo_id": self.photo_id or "",
            "error": self.error.code if self.error else "",
            "message": self.error.message if self.error else "",
        }


REPORT_COLUMNS = tuple(RowResult(0, "", "", RowOutcome.VALID).as_row())  # the report CSV's header


@dataclass
class ImportSummary:
    rows: int = 0
    persons: dict[str, int] = field(default_factory=dict)  # PersonChange -> count
    outcomes: dict[str, int] = field(default_factory=dict)  # RowOutcome -> count
    errors: dict[str, int] = field(default_factory=dict)  # error code -> count
    matches: int = 0  # decided cross-match candidates restored (an export's matches.jsonl)
    seconds: float = 0.0

    def add(self, result: RowResult) -> None:
        self.rows += 1
        self.outcomes[result.outcome] = self.outcomes.get(result.outcome, 0) + 1
        if result.error is not None:
            self.errors[result.error.code] = self.errors.get(result.error.code, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "persons": self.persons,
            "outcomes": self.outcomes,
            "errors": self.errors,
            "matches_restored": self.matches,
            "seconds": round(self.seconds, 1),
        }


Sink = Callable[[RowResult], None]


def import_manifest(
    db: FaceDB,
    manifest: Path,
    sink: Sink,
    *,
    dry_run: bool = False,
    batch: int = BATCH,
    caller: Caller = LOCAL,
) -> ImportSummary:
    """Import every row, giving each row's result to ``sink`` as soon as it is known.

    A bad row never stops the rest; only an unreadable manifest raises (InvalidInput).
    """
    start = time.perf_counter()
    summary = ImportSummary()
    groups: dict[str, list[Row]] = {}
    for row in read_manifest(manifest):
        groups.setdefault(row.key, []).append(row)

    def emit(result: RowResult) -> None:
        summary.add(result)
        sink(result)

    pending: list[tuple[Row, Prepared, PersonChange]] = []
    for rows in groups.values():
        person_id, change, accepted = _person(db, rows, emit, dry_run)
        if not accepted:
            continue
        summary.persons[change] = summary.persons.get(change, 0) + 1
        for row, upload in _photos(db, person_id, accepted, change, emit, dry_run):
            assert person_id is not None
            try:
                pending.append((row, prepare(db, person_id, [upload]), change))
            except (InvalidInput, NotFound) as exc:
                emit(_result(row, RowOutcome.REFUSED, change, person_id, error=exc))
                continue
            if len(pending) >= batch:
                _commit(db, pending, emit)
                pending = []
    if pending:
        _commit(db, pending, emit)
    decisions = manifest.resolve().parent / MATCHES
    if decisions.is_file():
        summary.matches = restore_matches(db, decisions, dry_run)
    summary.seconds = time.perf_counter() - start
    if not dry_run:
        audit.record(
            db,
            AuditAction.IMPORT,
            caller,
            summary.outcomes.get(RowOutcome.STORED, 0),
            [{"manifest": str(manifest), **summary.as_dict()}],
            summary.seconds,
        )
    return summary


def _person(
    db: FaceDB, rows: list[Row], emit: Sink, dry_run: bool
) -> tuple[str | None, PersonChange, list[Row]]:
    """Resolve one person's rows to a stored person; return its id, what changed, and the
    rows still standing (rows refused here were given to ``emit``).

    The first row giving a field sets it; a later row giving it otherwise is refused. Free
    attributes merge, the first value of each winning.
    """
    fields: dict[str, Any] = {}
    accepted: list[Row] = []
    for row in rows:
        if row.error is None:
            clash = [
                k
                for k, v in row.person.items()
                if k in fields and k != "attributes" and fields[k] != v
            ]
            if clash:
                row.error = ConflictingRecord(
                    f"{clash[0]} is {row.person[clash[0]]!r} here but {fields[clash[0]]!r} "
                    f"on an earlier row of case {row.key}",
                    field=clash[0],
                )
        if row.error is not None:
            emit(_result(row, RowOutcome.REFUSED, error=row.error))
            continue
        for key, value in row.person.items():
            if key == "attributes":
                fields["attributes"] = {**value, **fields.get("attributes", {})}
            else:
                fields.setdefault(key, value)
        accepted.append(row)
    if not accepted:
        return None, PersonChange.NONE, []
    first = accepted[0]
    try:
        person_id, change = _store_person(db, first.person_id, first.external_ref, fields, dry_run)
    except FaceDBError as exc:
        for row in accepted:
            emit(_result(row, RowOutcome.REFUSED, error=exc))
        return None, PersonChange.NONE, []
    return person_id, change, accepted


def _store_person(
    db: FaceDB,
    person_id: str | None,
    external_ref: str | None,
    fields: dict[str, Any],
    dry_run: bool,
) -> tuple[str | None, PersonChange]:
    """Create the person, or update the fields that differ, through the person service
    (the API's rules: birth date and year agree, no photo dated before a new birth date, a
    move between registers is cross-matched)."""
    with transaction(db.sessions) as session:
        person = _find(session, person_id, external_ref)
        if person is not None:
            changes = {k: v for k, v in fields.items() if getattr(person, k) != v}
            if "attributes" in changes:
                merged = {**(person.attributes or {}), **changes["attributes"]}
                changes["attributes"] = merged
                if merged == person.attributes:
                    del changes["attributes"]
            found_id, current = person.id, {"birth_date": person.birth_date,
                                            "birth_year": person.birth_year}  # fmt: skip
    if person is None:
        if "name" not in fields:
            raise InvalidInput("a new person needs a name", field="name")
        if dry_run:
            check_person(fields)
            return person_id, PersonChange.CREATED
        new = {**fields, **({"id": person_id} if person_id else {})}
        return create_person(db, new).id, PersonChange.CREATED
    if not changes:
        return found_id, PersonChange.UNCHANGED
    if dry_run:
        check_person({**current, **changes})
    else:
        update_person(db, found_id, changes)
    return found_id, PersonChange.UPDATED


def _find(session: Any, person_id: str | None, external_ref: str | None) -> Person | None:
    if person_id:
        return session.get(Person, person_id)
    return repo.person_by_external_ref(session, external_ref or "")


def _photos(
    db: FaceDB,
    person_id: str | None,
    rows: list[Row],
    change: PersonChange,
    emit: Sink,
    dry_run: bool,
) -> Iterator[tuple[Row, Upload]]:
    """Read each row's photo; emit rows that are done without analysis (missing, already
    stored, duplicated, or a dry run); yield the rest to analyse, one at a time."""
    settings = db.settings
    seen: set[str] = set()
    birth = _birth(db, person_id, rows)
    for row in rows:
        if row.path is None:
            emit(_result(row, RowOutcome.RECORD, change, person_id))
            continue
        try:
            if row.taken_at is not None:
                check_taken_at(row.taken_at, *birth)
            data = _read(row.path, settings.max_image_bytes)
            read_header(data, settings.max_image_bytes, settings.max_image_pixels)
        except (InvalidInput, ImageError) as exc:
            emit(_result(row, RowOutcome.REFUSED, change, person_id, error=exc))
            continue
        sha = hashlib.sha256(data).hexdigest()
        if sha in seen:
            emit(_result(row, RowOutcome.DUPLICATE, change, person_id))
            continue
        seen.add(sha)
        existing = _stored_photo(db, person_id, sha)
        if existing is not None:
            emit(_result(row, RowOutcome.ALREADY_STORED, change, person_id, existing))
        elif dry_run:
            emit(_result(row, RowOutcome.VALID, change, person_id))
        else:
            yield row, Upload(row.raw_path, io.BytesIO(data), row.taken_at)


def _birth(db: FaceDB, person_id: str | None, rows: list[Row]) -> tuple[Any, Any]:
    """Return the person's (birth_date, birth_year) as they stand after this import."""
    merged: dict[str, Any] = {}
    for row in rows:
        for key in ("birth_date", "birth_year"):
            if key in row.person:
                merged.setdefault(key, row.person[key])
    if person_id and len(merged) < 2:
        with transaction(db.sessions) as session:
            person = session.get(Person, person_id)
            if person is not None:
                merged.setdefault("birth_date", person.birth_date)
                merged.setdefault("birth_year", person.birth_year)
    return merged.get("birth_date"), merged.get("birth_year")


def _stored_photo(db: FaceDB, person_id: str | None, sha: str) -> str | None:
    if person_id is None:
        return None
    with transaction(db.sessions) as session:
        photo = repo.photo_by_sha(session, person_id, sha)
        return photo.id if photo is not None else None


def _read(path: Path, max_bytes: int) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise FileUnreadable(f"cannot read {path}: {exc.strerror or exc}") from None
    return Upload(path.name, io.BytesIO(data)).read(max_bytes)


def _commit(db: FaceDB, pending: list[tuple[Row, Prepared, PersonChange]], emit: Sink) -> None:
    reports = commit(db, [p for _, p, _ in pending], sweep=False)
    for (row, prepared, change), report in zip(pending, reports, strict=True):
        result = report.results[0]
        if result.status == UploadStatus.STORED:
            photo_id = result.photo.id if result.photo else None
            emit(_result(row, RowOutcome.STORED, change, prepared.person_id, photo_id))
        elif result.status == UploadStatus.DUPLICATE:  # stored meanwhile by someone else
            photo_id = result.photo.id if result.photo else None
            emit(_result(row, RowOutcome.ALREADY_STORED, change, prepared.person_id, photo_id))
        else:
            emit(_result(row, RowOutcome.REFUSED, change, prepared.person_id, error=result.error))


def _result(
    row: Row,
    outcome: RowOutcome,
    person: PersonChange = PersonChange.NONE,
    person_id: str | None = None,
    photo_id: str | None = None,
    error: FaceDBError | None = None,
) -> RowResult:
    return RowResult(row.line, row.key, row.raw_path, outcome, person, person_id, photo_id, error)


def restore_matches(db: FaceDB, path: Path, dry_run: bool) -> int:
    """Restore an export's decided candidates whose two persons exist here; return how many.

    A pair decided here already is left alone; a pending one takes the exported decision.
    """
    restored = 0
    with path.open(encoding="utf-8") as handle:
        items = [json.loads(line) for line in handle if line.strip()]
    with transaction(db.sessions) as session:
        for item in items:
            sides: dict[str, tuple[Any, Any]] = {}
            for side in ("missing", "found"):
                person = session.get(Person, item[f"{side}_person_id"])
                photo = (
                    repo.photo_by_sha(session, person.id, item[f"{side}_photo_sha256"] or "")
                    if person
                    else None
                )
                faces = repo.faces_of_photos(session, [photo.id]).get(photo.id) if photo else None
                sides[side] = (photo, faces[0] if faces else None)
            if any(face is None for _, face in sides.values()):
                continue
            row = session.execute(
                select(MatchCandidate).where(
                    MatchCandidate.missing_person_id == item["missing_person_id"],
                    MatchCandidate.found_person_id == item["found_person_id"],
                )
            ).scalar_one_or_none()
            if row is not None and row.state != MatchState.PENDING:
                continue
            if dry_run:
                restored += 1
                continue
            if row is None:
                row = MatchCandidate()
                session.add(row)
            for key in MATCH_COLUMNS:
                value = item.get(key)
                if key.endswith("_at") and value:
                    value = _parse_time(key, value)
                setattr(row, key, value)
            for side, (photo, face) in sides.items():
                setattr(row, f"{side}_photo_id", photo.id)
                setattr(row, f"{side}_face_id", face.id)
            restored += 1
    return restored


def _parse_time(key: str, value: str) -> Any:
    if key.endswith("taken_at"):
        return date.fromisoformat(value)
    return datetime.fromisoformat(value)

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
from pathlib import Path
from typing import Any, cast

from facedb.bulk.exporter import MATCHES
from facedb.bulk.manifest import Row, read_manifest
from facedb.bulk.source import ImportSource, opened
from facedb.casework.review import check_link, link_confirmed
from facedb.config import Settings
from facedb.domain import (
    AuditAction,
    MatchState,
    PersonChange,
    Register,
    RowOutcome,
    UploadStatus,
)
from facedb.errors import (
    ConflictingRecord,
    FaceDBError,
    ImageError,
    InvalidInput,
    NotFound,
)
from facedb.pipeline.decode import read_header
from facedb.records import Caller, PersonFields, PersonRecord
from facedb.services.enrollment import EnrollmentService, Prepared
from facedb.services.persons import PersonService, check_person, check_taken_at
from facedb.services.uploads import Upload
from facedb.store.unit import Store, Unit
from facedb.trail.audit import LOCAL, AuditService

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


@dataclass(frozen=True)
class Importer:
    """Imports register manifests through the person and enrollment services (the API's
    rules and the same audit)."""

    settings: Settings
    store: Store
    persons: PersonService
    enrollment: EnrollmentService
    audit: AuditService

    def run(
        self,
        manifest: Path,
        sink: Sink,
        *,
        dry_run: bool = False,
        batch: int = BATCH,
        caller: Caller = LOCAL,
        root: Path | None = None,
    ) -> ImportSummary:
        """Import every row of a manifest (or of an archive `facedb export` wrote), giving
        each row's result to ``sink`` as soon as it is known. Photo paths resolve inside
        ``root`` (default: the manifest's folder).

        A bad row never stops the rest; only an unreadable manifest raises (InvalidInput).
        """
        with opened(manifest, root) as source:
            return self._run(source, str(manifest), sink, dry_run, batch, caller)

    def _run(
        self,
        source: ImportSource,
        manifest: str,
        sink: Sink,
        dry_run: bool,
        batch: int,
        caller: Caller,
    ) -> ImportSummary:
        start = time.perf_counter()
        summary = ImportSummary()
        groups: dict[str, list[Row]] = {}
        for row in read_manifest(source):
            groups.setdefault(row.key, []).append(row)

        def emit(result: RowResult) -> None:
            summary.add(result)
            sink(result)

        pending: list[tuple[Row, Prepared, PersonChange]] = []
        for rows in groups.values():
            person_id, change, accepted = self._person(rows, emit, dry_run)
            if not accepted:
                continue
            summary.persons[change] = summary.persons.get(change, 0) + 1
            photos = self._photos(source, person_id, accepted, change, emit, dry_run)
            for row, upload in photos:
                assert person_id is not None
                try:
                    pending.append((row, self.enrollment.prepare(person_id, [upload]), change))
                except (InvalidInput, NotFound) as exc:
                    emit(_result(row, RowOutcome.REFUSED, change, person_id, error=exc))
                    continue
                if len(pending) >= batch:
                    self._commit(pending, emit)
                    pending = []
        if pending:
            self._commit(pending, emit)
        decisions = source.sidecar(MATCHES)
        if decisions is not None:
            summary.matches = self.restore_matches(decisions, emit, dry_run)
        summary.seconds = time.perf_counter() - start
        if not dry_run:
            self.audit.record(
                AuditAction.IMPORT,
                caller,
                summary.outcomes.get(RowOutcome.STORED, 0),
                [{"manifest": manifest, **summary.as_dict()}],
                summary.seconds,
            )
        return summary

    def _person(
        self, rows: list[Row], emit: Sink, dry_run: bool
    ) -> tuple[str | None, PersonChange, list[Row]]:
        """Resolve one person's rows to a stored person; return its id, what changed, and
        the rows still standing (rows refused here were given to ``emit``).

        The first row giving a field sets it; a later row giving it otherwise is refused.
        Free attributes merge, the first value of each winning.
        """
        fields: dict[str, Any] = {}
        accepted: list[Row] = []
        for row in rows:
            given: dict[str, Any] = dict(row.person)
            if row.error is None:
                clash = [
                    k
                    for k, v in given.items()
                    if k in fields and k != "attributes" and fields[k] != v
                ]
                if clash:
                    row.error = ConflictingRecord(
                        f"{clash[0]} is {given[clash[0]]!r} here but {fields[clash[0]]!r} "
                        f"on an earlier row of case {row.key}",
                        field=clash[0],
                    )
            if row.error is not None:
                emit(_result(row, RowOutcome.REFUSED, error=row.error))
                continue
            for key, value in given.items():
                if key == "attributes":
                    fields["attributes"] = {**value, **fields.get("attributes", {})}
                else:
                    fields.setdefault(key, value)
            accepted.append(row)
        if not accepted:
            return None, PersonChange.NONE, []
        first = accepted[0]
        try:
            person_id, change = self._store_person(
                first.person_id, first.external_ref, cast(PersonFields, fields), dry_run
            )
        except FaceDBError as exc:
            for row in accepted:
                emit(_result(row, RowOutcome.REFUSED, error=exc))
            return None, PersonChange.NONE, []
        return person_id, change, accepted

    def _store_person(
        self,
        person_id: str | None,
        external_ref: str | None,
        fields: PersonFields,
        dry_run: bool,
    ) -> tuple[str | None, PersonChange]:
        """Create the person, or update the fields that differ, through the person service
        (the API's rules: birth date and year agree, no photo dated before a new birth date,
        a move between registers is cross-matched)."""
        with self.store.unit() as unit:
            person = _find(unit, person_id, external_ref)
        if person is None:
            if "name" not in fields:
                raise InvalidInput("a new person needs a name", field="name")
            if dry_run:
                check_person(fields)
                return person_id, PersonChange.CREATED
            new: PersonFields = {**fields, "id": person_id} if person_id else fields
            return self.persons.create(new).id, PersonChange.CREATED
        changes = cast(PersonFields, {k: v for k, v in fields.items() if getattr(person, k) != v})
        if "attributes" in changes:
            merged = {**person.attributes, **changes["attributes"]}
            changes["attributes"] = merged
            if merged == person.attributes:
                del changes["attributes"]
        if not changes:
            return person.id, PersonChange.UNCHANGED
        if dry_run:
            check_person({"birth_date": person.birth_date, "birth_year": person.birth_year,
                          **changes})  # fmt: skip
        else:
            self.persons.update(person.id, changes)
        return person.id, PersonChange.UPDATED

    def _photos(
        self,
        source: ImportSource,
        person_id: str | None,
        rows: list[Row],
        change: PersonChange,
        emit: Sink,
        dry_run: bool,
    ) -> Iterator[tuple[Row, Upload]]:
        """Read each row's photo; emit rows that are done without analysis (missing,
        already stored, duplicated, or a dry run); yield the rest to analyse, one at a time."""
        settings = self.settings
        seen: set[str] = set()
        birth = self._birth(person_id, rows)
        for row in rows:
            if not row.raw_path:
                emit(_result(row, RowOutcome.RECORD, change, person_id))
                continue
            try:
                if row.taken_at is not None:
                    check_taken_at(row.taken_at, *birth)
                data = source.read(row.raw_path, settings.max_image_bytes)
                read_header(data, settings.max_image_bytes, settings.max_image_pixels)
            except (InvalidInput, ImageError) as exc:
                emit(_result(row, RowOutcome.REFUSED, change, person_id, error=exc))
                continue
            sha = hashlib.sha256(data).hexdigest()
            if sha in seen:
                emit(_result(row, RowOutcome.DUPLICATE, change, person_id))
                continue
            seen.add(sha)
            existing = self._stored_photo(person_id, sha)
            if existing is not None:
                emit(_result(row, RowOutcome.ALREADY_STORED, change, person_id, existing))
            elif dry_run:
                emit(_result(row, RowOutcome.VALID, change, person_id))
            else:
                yield row, Upload(row.raw_path, io.BytesIO(data), row.taken_at)

    def _birth(self, person_id: str | None, rows: list[Row]) -> tuple[Any, Any]:
        """Return the person's (birth_date, birth_year) as they stand after this import."""
        merged: dict[str, Any] = {}
        for row in rows:
            for key in ("birth_date", "birth_year"):
                if key in row.person:
                    merged.setdefault(key, row.person[key])
        if person_id and len(merged) < 2:
            with self.store.unit() as unit:
                person = unit.persons.find(person_id)
            if person is not None:
                merged.setdefault("birth_date", person.birth_date)
                merged.setdefault("birth_year", person.birth_year)
        return merged.get("birth_date"), merged.get("birth_year")

    def _stored_photo(self, person_id: str | None, sha: str) -> str | None:
        if person_id is None:
            return None
        with self.store.unit() as unit:
            photo = unit.photos.by_sha(person_id, sha)
        return photo.id if photo is not None else None

    def _commit(self, pending: list[tuple[Row, Prepared, PersonChange]], emit: Sink) -> None:
        reports = self.enrollment.commit([p for _, p, _ in pending], sweep=False)
        for (row, prepared, change), report in zip(pending, reports, strict=True):
            result = report.results[0]
            photo_id = result.photo.id if result.photo else None
            if result.status == UploadStatus.STORED:
                emit(_result(row, RowOutcome.STORED, change, prepared.person_id, photo_id))
            elif result.status == UploadStatus.DUPLICATE:  # stored meanwhile by someone else
                emit(_result(row, RowOutcome.ALREADY_STORED, change, prepared.person_id,
                             photo_id))  # fmt: skip
            else:
                emit(_result(row, RowOutcome.REFUSED, change, prepared.person_id,
                             error=result.error))  # fmt: skip

    def restore_matches(self, decisions: bytes, emit: Sink, dry_run: bool) -> int:
        """Restore an export's decided candidates whose two persons and photos are stored
        here, each line's outcome given to ``emit`` (``path`` is ``matches.jsonl``); return
        how many were restored. A pair decided here already is left alone; a pending one
        takes the exported decision. A confirmation obeys the review's rule (one link per
        person): one that would link a person linked elsewhere is refused (``already_linked``)
        and nothing of it is written."""
        restored = 0
        for line, text in enumerate(decisions.decode("utf-8").splitlines(), start=1):
            if not text.strip():
                continue
            refused: FaceDBError | None = None
            try:
                item = json.loads(text)
                outcome = self._restore(item, dry_run)
            except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
                error = InvalidInput(f"not an exported decision: {exc}")
                emit(RowResult(line, "", MATCHES, RowOutcome.REFUSED, error=error))
                continue
            except FaceDBError as exc:
                outcome, refused = RowOutcome.REFUSED, exc
            if outcome is not None:
                key = f"{item['missing_person_id']} / {item['found_person_id']}"
                emit(RowResult(line, key, MATCHES, outcome, error=refused))
                restored += outcome in (RowOutcome.RESTORED, RowOutcome.VALID)
        return restored

    def _restore(self, item: dict[str, Any], dry_run: bool) -> RowOutcome | None:
        """Restore one exported decision in a serialized unit of its own; None when one of
        its persons or photos is not stored here."""
        with self.store.unit(serialized=True) as unit:
            missing, found = (
                _face_of(unit, item[f"{side}_person_id"], item[f"{side}_photo_sha256"])
                for side in Register
            )
            if missing is None or found is None:
                return None
            if unit.archive.decided_between(item["missing_person_id"], item["found_person_id"]):
                return RowOutcome.ALREADY_STORED
            confirmed = item.get("state") == MatchState.CONFIRMED
            persons = (item["missing_person_id"], item["found_person_id"])
            if dry_run:
                if confirmed:
                    check_link(unit, persons)
                return RowOutcome.VALID
            pair_id = unit.archive.restore(item, missing, found)
            if confirmed:
                link_confirmed(unit, persons, pair_id)
        return RowOutcome.RESTORED


def _face_of(unit: Unit, person_id: str, sha: str | None) -> tuple[str, int] | None:
    """Return (photo id, face id) of the person's photo with these bytes, if stored here."""
    photo = unit.photos.by_sha(person_id, sha or "") if unit.persons.find(person_id) else None
    if photo is None or not photo.faces:
        return None
    return photo.id, photo.faces[0].id


def _find(unit: Unit, person_id: str | None, external_ref: str | None) -> PersonRecord | None:
    if person_id:
        return unit.persons.find(person_id)
    return unit.persons.by_external_ref(external_ref or "")


def _result(
    row: Row,
    outcome: RowOutcome,
    person: PersonChange = PersonChange.NONE,
    person_id: str | None = None,
    photo_id: str | None = None,
    error: FaceDBError | None = None,
) -> RowResult:
    return RowResult(row.line, row.key, row.raw_path, outcome, person, person_id, photo_id, error)

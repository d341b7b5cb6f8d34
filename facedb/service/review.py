"""The review queue: cross-match candidate pairs, and people's decisions on them.

Confirming a pair says the missing person and the found person are one: both records are
closed (their case is resolved; closed persons take part in no cross-matching) and each
names the other in ``linked_person_id``. Reversing a confirmation (a second decision,
``rejected``) restores the statuses the confirmation changed and clears the links. Every
decision is written to the audit trail; cross-matching never changes a decided pair.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select

from facedb.domain import AgeSource, AuditAction, MatchState, PersonStatus
from facedb.errors import Conflict, InvalidInput, NotFound
from facedb.service.audit import Caller, audited
from facedb.service.context import FaceDB
from facedb.service.records import PersonRecord, utc
from facedb.store import candidates as store
from facedb.store.db import transaction
from facedb.store.models import MatchCandidate, Person

MAX_NOTE = 2000


@dataclass(frozen=True)
class MatchSide:
    """One person of a pair: who (None once deleted), which face, and their age at it."""

    person: PersonRecord | None
    face_id: int | None
    photo_id: str | None
    taken_at: date | None
    age_at_photo: float | None
    age_source: AgeSource | None


@dataclass(frozen=True)
class Decision:
    by: str | None
    at: datetime
    note: str | None


@dataclass(frozen=True)
class MatchRecord:
    id: int
    state: MatchState
    score: float
    rank: int
    years_between: float | None
    missing: MatchSide
    found: MatchSide
    created_at: datetime
    raised_at: datetime
    decision: Decision | None


def list_matches(
    db: FaceDB,
    *,
    state: MatchState | None = None,
    min_score: float | None = None,
    person_id: str | None = None,
    by_date: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[MatchRecord], int]:
    """Return one page of candidate pairs (best first, or newest first) and the total."""
    with transaction(db.sessions) as session:
        rows, total = store.find_candidates(
            session, state=state, min_score=min_score, person_id=person_id,
            by_date=by_date, limit=limit, offset=offset,
        )  # fmt: skip
        return _records(session, rows), total


def get_match(db: FaceDB, match_id: int) -> MatchRecord:
    with transaction(db.sessions) as session:
        return _records(session, [_get(session, match_id)])[0]


def decide(
    db: FaceDB, caller: Caller, match_id: int, decision: MatchState, note: str | None
) -> MatchRecord:
    """Confirm or reject a pair (audited); a change of decision undoes the earlier one."""
    if decision is MatchState.PENDING:
        raise InvalidInput("a decision is `confirmed` or `rejected`", field="decision")
    if note is not None and len(note) > MAX_NOTE:
        raise InvalidInput(f"the note is longer than {MAX_NOTE} characters", field="note")
    with audited(db, AuditAction.DECISION, caller) as trail:
        with transaction(db.sessions) as session:
            row = _get(session, match_id, lock=True)
            before = MatchState(row.state)
            if decision is MatchState.CONFIRMED and before is not MatchState.CONFIRMED:
                _link(session, row)
            elif before is MatchState.CONFIRMED and decision is MatchState.REJECTED:
                _unlink(session, row)
            row.state = decision.value
            row.decided_by = caller.key_name
            row.decided_at = datetime.now(UTC)
            row.note = note
        trail.faces_found = 0
        trail.results = [
            {"match_id": match_id, "decision": decision.value, "before": before.value,
             "missing_person_id": row.missing_person_id, "found_person_id": row.found_person_id,
             "note": note}
        ]  # fmt: skip
    return get_match(db, match_id)


def _link(session: Any, row: MatchCandidate) -> None:
    missing = session.get(Person, row.missing_person_id)
    found = session.get(Person, row.found_person_id)
    if missing is None or found is None:
        raise Conflict("one of the two persons was deleted; the pair can only be rejected")
    row.statuses_before = {missing.id: missing.status, found.id: found.status}
    for person, other in ((missing, found), (found, missing)):
        person.status = PersonStatus.CLOSED.value
        person.linked_person_id = other.id


def _unlink(session: Any, row: MatchCandidate) -> None:
    pair = {row.missing_person_id: row.found_person_id, row.found_person_id: row.missing_person_id}
    for person_id, other_id in pair.items():
        person = session.get(Person, person_id)
        if person is None or person.linked_person_id != other_id:
            continue  # deleted, or linked elsewhere since: leave it as it is
        person.linked_person_id = None
        person.status = (row.statuses_before or {}).get(person_id, person.status)


def _get(session: Any, match_id: int, lock: bool = False) -> MatchCandidate:
    row = session.get(MatchCandidate, match_id, with_for_update=lock)
    if row is None:
        raise NotFound(f"no match candidate with id {match_id}")
    return row


def _records(session: Any, rows: list[MatchCandidate]) -> list[MatchRecord]:
    ids = sorted({r.missing_person_id for r in rows} | {r.found_person_id for r in rows})
    found = session.execute(select(Person).where(Person.id.in_(ids))).scalars() if ids else []
    persons = {p.id: PersonRecord.of(p) for p in found}
    return [_record(r, persons) for r in rows]


def _record(row: MatchCandidate, persons: dict[str, PersonRecord]) -> MatchRecord:
    def side(prefix: str) -> MatchSide:
        person = persons.get(getattr(row, f"{prefix}_person_id"))
        source = getattr(row, f"{prefix}_age_source")
        return MatchSide(
            person=person,
            face_id=int(getattr(row, f"{prefix}_face_id")) if person else None,
            photo_id=getattr(row, f"{prefix}_photo_id") if person else None,
            taken_at=getattr(row, f"{prefix}_taken_at"),
            age_at_photo=getattr(row, f"{prefix}_age"),
            age_source=AgeSource(source) if source else None,
        )

    decided_at = row.decided_at
    return MatchRecord(
        id=int(row.id),
        state=MatchState(row.state),
        score=row.score,
        rank=row.rank,
        years_between=row.years_between,
        missing=side("missing"),
        found=side("found"),
        created_at=utc(row.created_at),
        raised_at=utc(row.raised_at),
        decision=Decision(row.decided_by, utc(decided_at), row.note) if decided_at else None,
    )

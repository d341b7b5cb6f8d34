"""The webhook outbox: events written in the transaction of what they announce, claimed
and marked by the sender; and which pending pairs have been announced."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, aliased

from facedb.domain import AgeVerdict, Delivery, EventType, MatchState
from facedb.records import utc
from facedb.store.models import MatchCandidate, OutboxEvent, Person
from facedb.store.pairs import involving
from facedb.store.rows import chunks


@dataclass(frozen=True)
class UnannouncedPair:
    """A pending pair no event has announced yet, with what its event tells."""

    id: int
    score: float
    years_between: float | None
    age_verdict: AgeVerdict | None
    warnings: int
    missing_person_id: str
    found_person_id: str
    missing_ref: str | None  # each person's case number (external_ref)
    found_ref: str | None


@dataclass(frozen=True)
class Claimed:
    """An event a sender holds for one attempt."""

    id: int
    event_id: str
    type: EventType
    payload: dict[str, Any]
    attempts: int  # before this one


@dataclass(frozen=True)
class OutboxSummary:
    pending: int
    delivered: int
    parked: int
    oldest_pending: datetime | None  # UTC
    last_error: str | None  # of the most recent failed attempt still undelivered


class OutboxRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    # --- announcing ----------------------------------------------------------------------
    def unannounced(
        self, person_ids: Sequence[str] | None, min_score: float | None
    ) -> list[UnannouncedPair]:
        """Return the pending pairs (of these persons; None: of anyone) at or above
        ``min_score`` that no event has announced."""
        missing, found = aliased(Person), aliased(Person)
        pair = MatchCandidate
        query = (
            select(pair.id, pair.score, pair.years_between, pair.age_verdict, pair.warnings,
                   pair.missing_person_id, pair.found_person_id, missing.external_ref,
                   found.external_ref)
            .join(missing, missing.id == pair.missing_person_id)
            .join(found, found.id == pair.found_person_id)
            .where(pair.state == MatchState.PENDING, pair.announced_at.is_(None))
            .order_by(pair.id)
        )  # fmt: skip
        if min_score is not None:
            query = query.where(pair.score >= min_score)
        if person_ids is None:
            return [UnannouncedPair(*row) for row in self._session.execute(query).tuples()]
        seen: dict[int, UnannouncedPair] = {}
        for chunk in chunks(sorted(set(person_ids)), 500):
            for row in self._session.execute(query.where(involving(chunk))).tuples():
                seen[row[0]] = UnannouncedPair(*row)
        return sorted(seen.values(), key=lambda p: p.id)

    def mark_announced(self, pair_ids: Sequence[int], at: datetime) -> None:
        for chunk in chunks(sorted(pair_ids), 1000):
            self._session.execute(
                update(MatchCandidate).where(MatchCandidate.id.in_(chunk)).values(announced_at=at)
            )

    def mark_all_announced(self, person_ids: Sequence[str] | None, at: datetime) -> None:
        """No webhook is set: count the pending pairs of these persons (None: of anyone) as
        announced, so that a webhook set later tells only of pairs that arrive after it."""
        statement = (
            update(MatchCandidate)
            .where(MatchCandidate.state == MatchState.PENDING)
            .where(MatchCandidate.announced_at.is_(None))
            .values(announced_at=at)
        )
        if person_ids is None:
            self._session.execute(statement)
            return
        for chunk in chunks(sorted(set(person_ids)), 500):
            self._session.execute(statement.where(involving(chunk)))

    # --- the events ----------------------------------------------------------------------
    def add(self, events: Sequence[tuple[str, EventType, dict[str, Any]]], at: datetime) -> None:
        """Queue events (event id, type, payload), due at once."""
        self._session.add_all(
            OutboxEvent(event_id=event_id, type=kind, payload=payload, state=Delivery.PENDING,
                        attempts=0, next_attempt_at=at, created_at=at)
            for event_id, kind, payload in events
        )  # fmt: skip
        self._session.flush()

    def claim(self, now: datetime, lease_until: datetime, limit: int) -> list[Claimed]:
        """Take up to ``limit`` due events for an attempt: each is leased (not due again)
        until ``lease_until``, so a sender that dies mid-attempt leaves it to be tried again
        then. Rows another process is claiming are skipped (PostgreSQL)."""
        rows = list(
            self._session.execute(
                select(OutboxEvent)
                .where(OutboxEvent.state == Delivery.PENDING, OutboxEvent.next_attempt_at <= now)
                .order_by(OutboxEvent.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).scalars()
        )
        for row in rows:
            row.next_attempt_at = lease_until
        return [Claimed(r.id, r.event_id, r.type, r.payload, r.attempts) for r in rows]

    def delivered(self, event_id: int, at: datetime) -> None:
        self._session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.id == event_id)
            .values(state=Delivery.DELIVERED, delivered_at=at, attempts=OutboxEvent.attempts + 1,
                    last_error=None)
        )  # fmt: skip

    def failed(self, event_id: int, error: str, retry_at: datetime | None) -> None:
        """Record a failed attempt: due again at ``retry_at``, or parked (None)."""
        values: dict[str, Any] = {"attempts": OutboxEvent.attempts + 1, "last_error": error[:500]}
        if retry_at is None:
            values["state"] = Delivery.PARKED
        else:
            values["next_attempt_at"] = retry_at
        self._session.execute(update(OutboxEvent).where(OutboxEvent.id == event_id).values(values))

    def retry_parked(self, now: datetime) -> int:
        """Put every parked event back in line, due now with its attempts counted afresh;
        return how many."""
        result = self._session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.state == Delivery.PARKED)
            .values(state=Delivery.PENDING, attempts=0, next_attempt_at=now)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def summary(self) -> OutboxSummary:
        grouped = select(OutboxEvent.state, func.count()).group_by(OutboxEvent.state)
        counts = {state: n for state, n in self._session.execute(grouped).tuples()}
        oldest = self._session.execute(
            select(func.min(OutboxEvent.created_at)).where(OutboxEvent.state == Delivery.PENDING)
        ).scalar()
        last_error = self._session.execute(
            select(OutboxEvent.last_error)
            .where(OutboxEvent.state != Delivery.DELIVERED, OutboxEvent.last_error.is_not(None))
            .order_by(OutboxEvent.id.desc())
            .limit(1)
        ).scalar()
        return OutboxSummary(
            pending=int(counts.get(Delivery.PENDING, 0)),
            delivered=int(counts.get(Delivery.DELIVERED, 0)),
            parked=int(counts.get(Delivery.PARKED, 0)),
            oldest_pending=utc(oldest) if oldest is not None else None,
            last_error=last_error,
        )

    def events(self, limit: int = 100) -> list[OutboxEvent]:
        """The newest events (for tests and the operator's look)."""
        query = select(OutboxEvent).order_by(OutboxEvent.id.desc()).limit(limit)
        return list(self._session.execute(query).scalars())

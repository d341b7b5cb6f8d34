"""What other systems are told, and when: the events of the webhook outbox.

Two kinds (``EventType``): a pair newly pending at or above ``notify_min_score`` (each pair
announced once, however often it is raised or re-checked afterwards), and a decision. Events
are written by the unit of work that writes what they announce, so they commit or vanish
with it; ``webhooks.py`` delivers them. Without a webhook nothing is queued, and pairs are
marked announced all the same: a webhook set later tells of pairs that arrive after it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from facedb.config import Settings
from facedb.domain import EventType, MatchState
from facedb.store.outbox import UnannouncedPair
from facedb.store.unit import Unit


@dataclass(frozen=True)
class Decided:
    """A decision, as its event tells it."""

    pair_id: int
    state: MatchState
    before: MatchState
    missing_person_id: str
    found_person_id: str
    by: str | None


@dataclass(frozen=True)
class Notices:
    enabled: bool
    min_score: float | None

    @classmethod
    def of(cls, settings: Settings) -> Notices:
        return cls(bool(settings.webhook_url), settings.notify_min_score)

    def pending(self, unit: Unit, person_ids: Sequence[str] | None) -> int:
        """Queue an event for each pending pair of these persons (None: of anyone) not yet
        announced; return how many."""
        now = datetime.now(UTC)
        if not self.enabled:
            unit.outbox.mark_all_announced(person_ids, now)
            return 0
        pairs = unit.outbox.unannounced(person_ids, self.min_score)
        unit.outbox.add([_pending_event(pair, now) for pair in pairs], now)
        unit.outbox.mark_announced([pair.id for pair in pairs], now)
        return len(pairs)

    def decided(self, unit: Unit, decision: Decided) -> None:
        """Queue the event of a decision."""
        if not self.enabled:
            return
        now = datetime.now(UTC)
        persons = unit.persons.many([decision.missing_person_id, decision.found_person_id])
        refs = {person_id: person.external_ref for person_id, person in persons.items()}
        body = {
            "pair": {"id": decision.pair_id, "url": f"/v1/matches/{decision.pair_id}",
                     "state": decision.state.value, "before": decision.before.value},
            "missing": _side(decision.missing_person_id, refs.get(decision.missing_person_id)),
            "found": _side(decision.found_person_id, refs.get(decision.found_person_id)),
            "decided_by": decision.by,
        }  # fmt: skip
        unit.outbox.add([_event(EventType.PAIR_DECIDED, now, body)], now)


def _pending_event(pair: UnannouncedPair, now: datetime) -> tuple[str, EventType, dict[str, Any]]:
    return _event(
        EventType.PAIR_PENDING,
        now,
        {
            "pair": {
                "id": pair.id,
                "url": f"/v1/matches/{pair.id}",
                "state": MatchState.PENDING.value,
                "score": pair.score,
                "years_between": pair.years_between,
                "age_verdict": pair.age_verdict.value if pair.age_verdict else None,
                "warnings": pair.warnings,
            },
            "missing": _side(pair.missing_person_id, pair.missing_ref),
            "found": _side(pair.found_person_id, pair.found_ref),
        },
    )


def _event(
    kind: EventType, now: datetime, body: dict[str, Any]
) -> tuple[str, EventType, dict[str, Any]]:
    event_id = str(uuid.uuid4())
    payload = {"event_id": event_id, "type": kind.value, "occurred_at": now.isoformat(), **body}
    return event_id, kind, payload


def _side(person_id: str, external_ref: str | None) -> dict[str, Any]:
    return {"person_id": person_id, "external_ref": external_ref}

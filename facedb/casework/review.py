"""The review queue: cross-match candidate pairs, and people's decisions on them.

Confirming a pair says the missing person and the found person are one: both records are
closed (their case is resolved; closed persons take part in no cross-matching) and each
names the other in ``linked_person_id``. Reversing a confirmation (a second decision,
``rejected``) restores the statuses the confirmation changed and clears the links. Every
decision is written to the audit trail; cross-matching never changes a decided pair.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from facedb.domain import AuditAction, MatchState, PersonStatus
from facedb.errors import InvalidInput
from facedb.records import Caller, PairFilter, PairRecord
from facedb.services.audit import AuditService
from facedb.store.unit import Store

MAX_NOTE = 2000


@dataclass(frozen=True)
class ReviewService:
    store: Store
    audit: AuditService

    def page(
        self,
        where: PairFilter | None = None,
        by_date: bool = False,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[PairRecord], int]:
        """Return one page of candidate pairs (best first, or newest first) and the total."""
        with self.store.unit() as unit:
            return unit.pairs.page(where or PairFilter(), by_date, limit, offset)

    def get(self, pair_id: int) -> PairRecord:
        with self.store.unit() as unit:
            return unit.pairs.get(pair_id)

    def decide(
        self, caller: Caller, pair_id: int, decision: MatchState, note: str | None
    ) -> PairRecord:
        """Confirm or reject a pair (audited); a change of decision undoes the earlier one."""
        if decision is MatchState.PENDING:
            raise InvalidInput("a decision is `confirmed` or `rejected`", field="decision")
        if note is not None and len(note) > MAX_NOTE:
            raise InvalidInput(f"the note is longer than {MAX_NOTE} characters", field="note")
        with self.audit.audited(AuditAction.DECISION, caller) as trail:
            with self.store.unit() as unit:
                pair = unit.pairs.lock(pair_id)
                statuses = None
                if decision is MatchState.CONFIRMED and pair.state is not MatchState.CONFIRMED:
                    statuses = unit.persons.link(pair.persons, PersonStatus.CLOSED)
                elif pair.state is MatchState.CONFIRMED and decision is MatchState.REJECTED:
                    unit.persons.unlink(pair.persons, pair.statuses_before)
                unit.pairs.decide(
                    pair_id, decision, caller.key_name, datetime.now(UTC), note, statuses
                )
            trail.results = [
                {
                    "match_id": pair_id,
                    "decision": decision.value,
                    "before": pair.state.value,
                    "missing_person_id": pair.missing_person_id,
                    "found_person_id": pair.found_person_id,
                    "note": note,
                }
            ]
        return self.get(pair_id)

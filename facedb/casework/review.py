"""The review queue: cross-match candidate pairs, and people's decisions on them.

Confirming a pair says the missing person and the found person are one: both records are
closed (their case is resolved; closed persons take part in no cross-matching) and each
names the other in ``linked_person_id``. A person is linked to at most one other record:
confirming when either is linked elsewhere is refused (``AlreadyLinked``), and a
confirmation takes both persons' other pending pairs out of the queue (``superseded``).
Reversing a confirmation (a second decision, ``rejected`` or ``inconclusive``) restores the
statuses it changed, clears the links and puts the superseded pairs back. An inconclusive
pair (a reason, a note) stays out of the queue until a new photo of either person arrives
(``PairRepository.reopen_inconclusive``, called where the photo is stored). Every decision
attempt is written to the audit trail, and each decision is announced (``notices``);
cross-matching never changes a decided or inconclusive pair.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from facedb.casework.checks import described
from facedb.domain import (
    AgeVerdict,
    AuditAction,
    InconclusiveReason,
    MatchState,
    PairOrder,
    PersonStatus,
)
from facedb.errors import AlreadyLinked, Claimed, InvalidInput
from facedb.records import Caller, Claim, PairFilter, PairRecord
from facedb.store.unit import Store, Unit
from facedb.trail.audit import AuditService
from facedb.trail.notices import Decided, Notices

MAX_NOTE = 2000
CLAIM_MINUTES = 30  # how long a reviewer's claim on a pair holds unless renewed


@dataclass(frozen=True)
class ReviewService:
    store: Store
    audit: AuditService
    notices: Notices
    reject_note_required: bool = False  # FACEDB_REJECT_NOTE_REQUIRED

    def page(
        self,
        where: PairFilter | None = None,
        order: PairOrder = PairOrder.EVIDENCE,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[PairRecord], int]:
        """Return one page of candidate pairs and the total; by default in the queue's
        order: pairs without warnings first, then by evidence."""
        with self.store.unit() as unit:
            pairs, total = unit.pairs.page(where or PairFilter(), order, limit, offset)
            return described(unit, pairs), total

    def get(self, pair_id: int) -> PairRecord:
        with self.store.unit() as unit:
            return described(unit, [unit.pairs.get(pair_id)])[0]

    def decide(
        self,
        caller: Caller,
        pair_id: int,
        decision: MatchState,
        note: str | None,
        reason: InconclusiveReason | None = None,
    ) -> PairRecord:
        """Confirm, reject or find a pair inconclusive (with its ``reason``; audited); a
        change of decision undoes the earlier one."""
        with self.audit.audited(AuditAction.DECISION, caller) as trail:
            check_reason(decision, reason)
            if note is not None and len(note) > MAX_NOTE:
                raise InvalidInput(f"the note is longer than {MAX_NOTE} characters", field="note")
            if (
                self.reject_note_required
                and decision is MatchState.REJECTED
                and not (note or "").strip()
            ):
                raise InvalidInput(
                    "this unit asks for a note with every rejection: say why the two are "
                    "not one person",
                    field="note",
                )
            with self.store.unit(serialized=True) as unit:  # one decision at a time
                pair = unit.pairs.lock(pair_id)
                refuse_others_claim(pair.claim, caller, pair_id)
                statuses, moved = None, 0
                if decision is MatchState.CONFIRMED and pair.state is not MatchState.CONFIRMED:
                    statuses, moved = link_confirmed(unit, pair.persons, pair_id)
                elif pair.state is MatchState.CONFIRMED and decision is not MatchState.CONFIRMED:
                    unit.persons.unlink(pair.persons, pair.statuses_before)
                    moved = _reopen(unit, pair_id)
                unit.pairs.decide(
                    pair_id, decision, caller.key_name, datetime.now(UTC), note, statuses, reason
                )
                self.notices.decided(unit, Decided(pair_id, decision, pair.state,
                                                   *pair.persons, caller.key_name))  # fmt: skip
            trail.results = [
                {
                    "match_id": pair_id,
                    "decision": decision.value,
                    "before": pair.state.value,
                    "missing_person_id": pair.missing_person_id,
                    "found_person_id": pair.found_person_id,
                    "note": note,
                    "reason": reason.value if reason else None,
                    "pairs_superseded" if statuses else "pairs_reopened": moved,
                }
            ]
        return self.get(pair_id)

    def claim(self, caller: Caller, pair_id: int, claim: bool = True) -> PairRecord:
        """Claim a pair for CLAIM_MINUTES (again: renewed), or release it (audited). Another
        reviewer's unexpired claim is refused (``Claimed``) and so is their decision."""
        with self.audit.audited(AuditAction.CLAIM, caller) as trail:
            with self.store.unit(serialized=True) as unit:
                pair = unit.pairs.lock(pair_id)
                if claim and pair.state.decided:
                    raise InvalidInput(f"pair {pair_id} is {pair.state.value}: nothing to claim")
                refuse_others_claim(pair.claim, caller, pair_id)
                until = datetime.now(UTC) + timedelta(minutes=CLAIM_MINUTES) if claim else None
                unit.pairs.claim(pair_id, claimant(caller) if claim else None, until)
            trail.results = [{"match_id": pair_id, "claimed": claim,
                              "until": until.isoformat() if until else None}]  # fmt: skip
        return self.get(pair_id)


def check_reason(decision: MatchState, reason: InconclusiveReason | None) -> None:
    """Refuse a decision a reviewer cannot give, an inconclusive one without its reason, and
    a reason given with a confirmation or a rejection."""
    if not decision.reviewable:
        raise InvalidInput(
            "a decision is `confirmed`, `rejected` or `inconclusive`", field="decision"
        )
    if decision is MatchState.INCONCLUSIVE and reason is None:
        choices = ", ".join(f"`{r.value}`" for r in InconclusiveReason)
        raise InvalidInput(f"say why it is inconclusive: a reason, one of {choices}",
                           field="reason")  # fmt: skip
    if decision is not MatchState.INCONCLUSIVE and reason is not None:
        raise InvalidInput("a reason goes with an `inconclusive` decision only", field="reason")


def claimant(caller: Caller) -> str:
    return caller.key_name or "local admin"


def refuse_others_claim(claim: Claim | None, caller: Caller, pair_id: int) -> None:
    """Refuse to act on a pair another reviewer is working on (their claim unexpired)."""
    if claim is not None and claim.by != claimant(caller):
        raise Claimed(
            f"pair {pair_id} is being reviewed by {claim.by} until "
            f"{claim.until:%Y-%m-%d %H:%M} UTC; work on another pair, or ask them"
        )


def link_confirmed(
    unit: Unit, persons: tuple[str, str], pair_id: int
) -> tuple[dict[str, PersonStatus], int]:
    """Link the two persons of a confirmed pair (both closed) and take their other pending
    pairs out of the queue; return their statuses before and how many pairs moved.
    AlreadyLinked when either is linked to someone else. The unit must be serialized
    (``Store.unit(serialized=True)``): a decision, and a decision an import restores, obey
    this one rule."""
    check_link(unit, persons)
    statuses = unit.persons.link(persons, PersonStatus.CLOSED)
    return statuses, unit.pairs.supersede(persons, pair_id)


def check_link(unit: Unit, persons: tuple[str, str]) -> None:
    """Raise AlreadyLinked unless the two persons may be linked to each other (their rows
    locked until the unit ends)."""
    refuse_relink(unit, persons, unit.persons.lock_links(persons))


def refuse_relink(unit: Unit, persons: tuple[str, str], linked: dict[str, str | None]) -> None:
    """Raise AlreadyLinked when either person is linked to someone other than the other."""
    for person_id, other_id in (persons, persons[::-1]):
        elsewhere = linked.get(person_id)
        if elsewhere is not None and elsewhere != other_id:
            confirmed = unit.pairs.confirmed_of(person_id)
            through = f" by pair {confirmed}" if confirmed is not None else ""
            raise AlreadyLinked(
                f"person {person_id} is already linked to person {elsewhere}{through}; "
                "reject that pair first if it was wrong"
            )


def _reopen(unit: Unit, pair_id: int) -> int:
    """Put back the pairs a reversed confirmation superseded: pending (or impossible, by their
    age check), unless a person of theirs is still linked by another confirmation, which
    then holds them. Return how many went back to the queue."""
    reopened = 0
    for other_id, missing_id, found_id, verdict in unit.pairs.superseded_by(pair_id):
        holder = next(
            (c for p in (missing_id, found_id) if (c := unit.pairs.confirmed_of(p)) is not None),
            None,
        )
        if holder is not None and holder != pair_id:
            unit.pairs.reopen(other_id, MatchState.SUPERSEDED, holder)
            continue
        impossible = verdict is AgeVerdict.IMPOSSIBLE
        unit.pairs.reopen(other_id, MatchState.IMPOSSIBLE if impossible else MatchState.PENDING,
                          None)  # fmt: skip
        reopened += not impossible
    return reopened

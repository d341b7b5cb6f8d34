"""The candidate pairs of the review queue: raised, settled, read, locked, decided.

Beside it: ``pair_writes.py`` (the per-database upsert and the evidence SQL),
``register_faces.py`` (the faces cross-matching reads), ``crossmatch_runs.py`` (the batch
run's cursor) and ``pair_archive.py`` (decided pairs exported and restored). Data only:
what a pair's checks say is decided by ``casework/checks.py`` (and its age check put in
words there); the store writes and reads the columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from facedb.domain import AgeVerdict, InconclusiveReason, MatchState, PairOrder, PersonStatus
from facedb.records import Claim, Decision, PairFilter, PairRecord, PairSide, PersonRecord
from facedb.store import pair_writes
from facedb.store.models import Face, MatchCandidate, PairSideColumns, Person, Photo
from facedb.store.pair_writes import PairFields
from facedb.store.rows import chunks, get_or_404, person_record


class StoredAgeCheck(NamedTuple):
    """What a pair's row keeps of its age check."""

    verdict: AgeVerdict | None
    expected_age: float | None
    estimated_age: float | None


class FlaggedPhoto(NamedTuple):
    """A photo whose declared age fits none of its faces, and their estimated ages."""

    declared_age: float | None
    estimated: list[float | None]


@dataclass(frozen=True)
class LockedPair:
    """A pair held for a decision: who it joins, its state, and the statuses a confirmation
    changed (restored when it is reversed)."""

    id: int
    state: MatchState
    missing_person_id: str
    found_person_id: str
    statuses_before: dict[str, PersonStatus]
    age_verdict: AgeVerdict | None
    claim: Claim | None = None  # an unexpired claim

    @property
    def persons(self) -> tuple[str, str]:
        return self.missing_person_id, self.found_person_id


class PairRepository:
    """Candidate pairs: one row per (missing person, found person)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def upsert(self, pairs: Sequence[PairFields], at: datetime, raise_by: float) -> int:
        """Raise pairs (``pair_writes.upsert``); return how many rows were written."""
        return pair_writes.upsert(self._session, pairs, at, raise_by)

    def rewrite(self, rows: Sequence[dict[str, Any]]) -> None:
        """Set columns of pairs by id (``pair_id`` in each row, the same columns in all)."""
        pair_writes.rewrite(self._session, rows)

    def settle(self, person_ids: Sequence[str] | None, floor: float) -> None:
        """Work out the evidence of these persons' pairs again (``pair_writes.settle``)."""
        pair_writes.settle(self._session, person_ids, floor)

    def page(
        self, where: PairFilter, order: PairOrder, limit: int, offset: int
    ) -> tuple[list[PairRecord], int]:
        """Return one page of pairs in this order, and the total."""
        query = select(MatchCandidate)
        if where.state is not None:
            query = query.where(MatchCandidate.state == where.state)
        if where.min_score is not None:
            query = query.where(MatchCandidate.score >= where.min_score)
        if where.person_id is not None:
            query = query.where(involving([where.person_id]))
        if where.external_ref is not None:
            cased = select(Person.id).where(Person.external_ref == where.external_ref)
            query = query.where(
                or_(
                    MatchCandidate.missing_person_id.in_(cased),
                    MatchCandidate.found_person_id.in_(cased),
                )
            )
        if where.warned is not None:
            query = query.where(
                MatchCandidate.warnings > 0 if where.warned else MatchCandidate.warnings == 0
            )
        if where.max_years_between is not None:
            query = query.where(MatchCandidate.years_between <= where.max_years_between)
        total = self._session.execute(
            select(func.count()).select_from(query.subquery())
        ).scalar_one()
        ordered = query.order_by(*ORDERS[order]).limit(limit).offset(offset)
        rows = list(self._session.execute(ordered).scalars())
        return self._records(rows), int(total)

    def count(self, state: MatchState) -> int:
        query = select(func.count(MatchCandidate.id)).where(MatchCandidate.state == state)
        return int(self._session.execute(query).scalar_one())

    def get(self, pair_id: int) -> PairRecord:
        return self._records(
            [get_or_404(self._session, MatchCandidate, pair_id, "match candidate")]
        )[0]

    def lock(self, pair_id: int) -> LockedPair:
        """Return the pair, its row locked until commit."""
        row = self._session.get(MatchCandidate, pair_id, with_for_update=True)
        if row is None:
            get_or_404(self._session, MatchCandidate, pair_id, "match candidate")
        assert row is not None
        before = {k: PersonStatus(v) for k, v in (row.statuses_before or {}).items()}
        return LockedPair(row.id, row.state, row.missing_person_id, row.found_person_id, before,
                          row.age_verdict, _claim(row))  # fmt: skip

    def claim(self, pair_id: int, by: str | None, until: datetime | None) -> None:
        """Record who works on the pair until when (None, None: nobody)."""
        self._session.execute(
            update(MatchCandidate)
            .where(MatchCandidate.id == pair_id)
            .values(claimed_by=by, claimed_until=until)
        )

    def decide(
        self,
        pair_id: int,
        state: MatchState,
        by: str | None,
        at: datetime,
        note: str | None,
        statuses_before: dict[str, PersonStatus] | None = None,
        reason: InconclusiveReason | None = None,
    ) -> None:
        """Record a decision (and, for a confirmation, the statuses it changed; for an
        inconclusive one, its reason)."""
        values: dict[str, Any] = {"state": state, "decided_by": by, "decided_at": at, "note": note,
                                  "reason": reason, "superseded_by": None, "claimed_by": None,
                                  "claimed_until": None}  # fmt: skip
        if statuses_before is not None:
            values["statuses_before"] = {k: v.value for k, v in statuses_before.items()}
        self._session.execute(
            update(MatchCandidate).where(MatchCandidate.id == pair_id).values(**values)
        )

    def supersede(self, person_ids: Sequence[str], by_pair: int) -> int:
        """Take the other pending pairs of these persons out of the queue (``superseded``,
        naming the confirmed pair); return how many."""
        result = self._session.execute(
            update(MatchCandidate)
            .where(
                MatchCandidate.state == MatchState.PENDING,
                MatchCandidate.id != by_pair,
                involving(person_ids),
            )
            .values(state=MatchState.SUPERSEDED, superseded_by=by_pair)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def superseded_by(self, pair_id: int) -> list[tuple[int, str, str, AgeVerdict | None]]:
        """Return (id, missing person, found person, age verdict) of the pairs this
        confirmation took out of the queue."""
        rows = self._session.execute(
            select(MatchCandidate.id, MatchCandidate.missing_person_id,
                   MatchCandidate.found_person_id, MatchCandidate.age_verdict)
            .where(MatchCandidate.superseded_by == pair_id)
        ).tuples()  # fmt: skip
        return [(int(i), m, f, v) for i, m, f, v in rows]

    def reopen(self, pair_id: int, state: MatchState, superseded_by: int | None) -> None:
        """Put a superseded pair back (pending or impossible), or hand it to the confirmation
        that still holds one of its persons."""
        self._session.execute(
            update(MatchCandidate)
            .where(MatchCandidate.id == pair_id)
            .values(state=state, superseded_by=superseded_by)
        )

    def reopen_inconclusive(self, person_id: str) -> int:
        """A new photo of this person: put their inconclusive pairs back in the queue
        (pending; the decision that held them stays on the pair); return how many."""
        result = self._session.execute(
            update(MatchCandidate)
            .where(MatchCandidate.state == MatchState.INCONCLUSIVE, involving([person_id]))
            .values(state=MatchState.PENDING)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def confirmed_of(self, person_id: str) -> int | None:
        """Return the confirmed pair that links this person, if any."""
        return self._session.execute(
            select(MatchCandidate.id).where(
                MatchCandidate.state == MatchState.CONFIRMED, involving([person_id])
            )
        ).scalar()

    def erase_side(self, person_id: str) -> None:
        """A person is being erased: drop their undecided pairs, and keep of their side of
        decided pairs only the person id (no face, photo, date or age; no age check)."""
        involved = involving([person_id])
        undecided = [MatchState.PENDING, MatchState.IMPOSSIBLE, MatchState.SUPERSEDED]
        self._session.execute(
            delete(MatchCandidate).where(MatchCandidate.state.in_(undecided), involved)
        )
        emptied = {f"{name}": None for name in ("face_id", "photo_id", "taken_at", "age",
                                                 "age_source")}  # fmt: skip
        common = {"years_between": None, "age_verdict": None, "expected_age": None,
                  "estimated_age": None, "gender_conflict": False}  # fmt: skip
        for side in ("missing", "found"):
            column = getattr(MatchCandidate, f"{side}_person_id")
            self._session.execute(
                update(MatchCandidate)
                .where(column == person_id)
                .values(**{f"{side}_{k}": v for k, v in emptied.items()}, **common)
            )

    def open_involving(self, person_id: str) -> list[tuple[int, int, int]]:
        """Return (pair id, missing face, found face) of the undecided pairs of a person."""
        rows = self._session.execute(
            select(MatchCandidate.id, MatchCandidate.missing_face_id,
                   MatchCandidate.found_face_id)
            .where(
                MatchCandidate.state.in_([MatchState.PENDING, MatchState.IMPOSSIBLE]),
                involving([person_id]),
            )
        ).tuples()  # fmt: skip
        return [(int(i), int(m), int(f)) for i, m, f in rows if m is not None and f is not None]

    def _records(self, rows: list[MatchCandidate]) -> list[PairRecord]:
        ids = sorted({r.missing_person_id for r in rows} | {r.found_person_id for r in rows})
        found = self._session.execute(select(Person).where(Person.id.in_(ids))).scalars()
        persons = {p.id: person_record(p) for p in found} if ids else {}
        ranks = self._ranks(rows)
        return [_record(r, persons, ranks[r.id]) for r in rows]

    def stored_checks(self, pair_ids: Sequence[int]) -> dict[int, StoredAgeCheck]:
        """What each of these pairs' rows keep of their age check."""
        out: dict[int, StoredAgeCheck] = {}
        for chunk in chunks(list(pair_ids)):
            query = select(MatchCandidate.id, MatchCandidate.age_verdict,
                           MatchCandidate.expected_age, MatchCandidate.estimated_age
                           ).where(MatchCandidate.id.in_(chunk))  # fmt: skip
            for pair_id, verdict, expected, estimated in self._session.execute(query).tuples():
                out[int(pair_id)] = StoredAgeCheck(verdict, expected, estimated)
        return out

    def flagged_photos(self, photo_ids: Sequence[str]) -> dict[str, FlaggedPhoto]:
        """Those of these photos flagged as an age conflict, with their faces' ages."""
        declared: dict[str, float | None] = {}
        for chunk in chunks(sorted(set(photo_ids))):
            query = select(Photo.id, Photo.age_at_photo).where(
                Photo.id.in_(chunk), Photo.age_conflict.is_(True)
            )
            declared.update(self._session.execute(query).tuples().all())
        ages: dict[str, list[float | None]] = {}
        for chunk in chunks(sorted(declared)):
            query = select(Face.photo_id, Face.age).where(Face.photo_id.in_(chunk))
            for photo_id, age in self._session.execute(query).tuples():
                ages.setdefault(photo_id, []).append(age)
        return {i: FlaggedPhoto(declared[i], ages.get(i, [])) for i in declared}

    def _ranks(self, rows: list[MatchCandidate]) -> dict[int, int]:
        """Return each pair's rank: 1 + the missing person's candidates scoring higher."""
        if not rows:
            return {}
        other = aliased(MatchCandidate)
        higher = (
            select(func.count(other.id))
            .where(other.missing_person_id == MatchCandidate.missing_person_id,
                   other.score > MatchCandidate.score)
            .correlate(MatchCandidate)
            .scalar_subquery()
        )  # fmt: skip
        query = select(MatchCandidate.id, higher).where(MatchCandidate.id.in_([r.id for r in rows]))
        return {int(i): int(n) + 1 for i, n in self._session.execute(query).tuples()}


def involving(person_ids: Sequence[str]) -> ColumnElement[bool]:
    """The pairs with a side among these persons."""
    return or_(
        MatchCandidate.missing_person_id.in_(person_ids),
        MatchCandidate.found_person_id.in_(person_ids),
    )


ORDERS: dict[PairOrder, tuple[Any, ...]] = {
    PairOrder.EVIDENCE: (
        MatchCandidate.warnings,
        MatchCandidate.evidence.desc(),
        MatchCandidate.id,
    ),
    PairOrder.SCORE: (MatchCandidate.score.desc(), MatchCandidate.id),
    PairOrder.DATE: (MatchCandidate.raised_at.desc(), MatchCandidate.id.desc()),
}


def _side(person: PersonRecord | None, side: PairSideColumns) -> PairSide:
    """One side as the queue shows it: without its face once the person is erased (its
    photo's warning and its face's quality are the casework's to add)."""
    return PairSide(
        person=person,
        person_id=side.person_id,
        face_id=side.face_id if person else None,
        photo_id=side.photo_id if person else None,
        taken_at=side.taken_at,
        age_at_photo=side.age,
        age_source=side.age_source,
        photo_warning=None,
        quality=None,
    )


def _record(row: MatchCandidate, persons: dict[str, PersonRecord], rank: int) -> PairRecord:
    """The pair as the queue shows it, but for its age check in words (``casework``'s)."""
    missing = _side(persons.get(row.missing.person_id), row.missing)
    found = _side(persons.get(row.found.person_id), row.found)
    decision = (
        Decision(by=row.decided_by, at=row.decided_at, note=row.note, reason=row.reason)
        if row.decided_at
        else None
    )
    return PairRecord(
        id=row.id,
        state=row.state,
        score=row.score,
        rank=rank,
        evidence=round(row.evidence, 5),
        warnings=row.warnings,
        age_check=None,  # the casework puts the stored check in words
        gender_conflict=row.gender_conflict,
        years_between=row.years_between,
        missing=missing,
        found=found,
        created_at=row.created_at,
        raised_at=row.raised_at,
        decision=decision,
        claim=_claim(row),
        superseded_by=row.superseded_by,
    )


def _claim(row: MatchCandidate) -> Claim | None:
    """The row's claim, while it has not lapsed."""
    until = row.claimed_until
    if row.claimed_by is None or until is None:
        return None
    until = until if until.tzinfo is not None else until.replace(tzinfo=UTC)
    return Claim(by=row.claimed_by, until=until) if until > datetime.now(UTC) else None

"""Cross-matching's data: the faces of each register, the candidate pairs, the batch run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Table, bindparam, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from facedb.domain import REGISTER_OF, MatchState, PersonStatus, Register
from facedb.records import (
    Decision,
    PairFilter,
    PairRecord,
    PairSide,
    PersonRecord,
    RegisterFace,
)
from facedb.store.models import (
    CrossmatchRun,
    Embedding,
    Face,
    MatchCandidate,
    PairSideColumns,
    Person,
    Photo,
    utcnow,
)
from facedb.store.rows import chunks, decode_vectors, get_or_404, person_record

_IN_REGISTER = list(REGISTER_OF)  # the statuses that place a person in a register


@dataclass(frozen=True)
class PairFields:
    """What a pair records when a face pair raises it."""

    score: float
    rank: int
    missing: PairSideColumns
    found: PairSideColumns
    years_between: float | None

    @property
    def key(self) -> tuple[str, str]:
        return self.missing.person_id, self.found.person_id


@dataclass(frozen=True)
class StoredPair:
    id: int
    state: MatchState
    score: float


@dataclass(frozen=True)
class LockedPair:
    """A pair held for a decision: who it joins, its state, and the statuses a confirmation
    changed (restored when it is reversed)."""

    id: int
    state: MatchState
    missing_person_id: str
    found_person_id: str
    statuses_before: dict[str, PersonStatus]

    @property
    def persons(self) -> tuple[str, str]:
        return self.missing_person_id, self.found_person_id


class RegisterFaces:
    """The faces of persons in a register, as cross-matching reads them."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def waiting(
        self, generation: int, dimension: int, limit: int
    ) -> tuple[list[RegisterFace], NDArray[np.float32]]:
        """Return faces not yet cross-matched (oldest first), with their vectors."""
        query = _with_vector(generation).where(Face.crossmatched_at.is_(None))
        return self._read(query.order_by(Face.id).limit(limit), dimension)

    def after(
        self, generation: int, dimension: int, after_face_id: int, limit: int
    ) -> tuple[list[RegisterFace], NDArray[np.float32]]:
        """Return faces with ids above ``after_face_id``, by id, with their vectors."""
        query = _with_vector(generation).where(Face.id > after_face_id)
        return self._read(query.order_by(Face.id).limit(limit), dimension)

    def vectors(
        self, register: Register, generation: int, dimension: int, batch: int = 20_000
    ) -> tuple[NDArray[np.int64], list[str], NDArray[np.float32]]:
        """Return every face of ``register``'s persons: ids, person ids and vectors, by id."""
        ids: list[int] = []
        persons: list[str] = []
        blobs: list[bytes] = []
        after = -1
        statuses = list(register.statuses)
        while True:
            rows = self._session.execute(
                select(Face.id, Face.person_id, Embedding.vector)
                .join(Person, Person.id == Face.person_id)
                .join(Embedding, (Embedding.face_id == Face.id)
                      & (Embedding.generation == generation))
                .where(Person.status.in_(statuses), Face.id > after)
                .order_by(Face.id)
                .limit(batch)
            ).all()  # fmt: skip
            if not rows:
                break
            ids += [int(r[0]) for r in rows]
            persons += [r[1] for r in rows]
            blobs += [r[2] for r in rows]
            after = ids[-1]
        return np.asarray(ids, dtype=np.int64), persons, decode_vectors(blobs, dimension)

    def describe(self, face_ids: Sequence[int]) -> dict[int, RegisterFace]:
        """Return what a pair records of each face that exists and is in a register."""
        out = {}
        for chunk in chunks(face_ids):
            for row in self._session.execute(_in_context().where(Face.id.in_(chunk))).all():
                face = _register_face(row)
                if face is not None:
                    out[face.face_id] = face
        return out

    def count(self, waiting_only: bool = False) -> int:
        """Return how many faces belong to persons in a register (or still wait)."""
        query = (
            select(func.count(Face.id))
            .join(Person, Person.id == Face.person_id)
            .where(Person.status.in_(_IN_REGISTER))
        )
        if waiting_only:
            query = query.where(Face.crossmatched_at.is_(None))
        return int(self._session.execute(query).scalar_one())

    def mark_matched(self, face_ids: Sequence[int], at: datetime) -> None:
        for chunk in chunks(face_ids):
            self._session.execute(update(Face).where(Face.id.in_(chunk)).values(crossmatched_at=at))

    def reset(self, person_id: str) -> None:
        """Make a person's faces wait for cross-matching again (their register changed)."""
        self._session.execute(
            update(Face).where(Face.person_id == person_id).values(crossmatched_at=None)
        )

    def _read(self, query: Any, dimension: int) -> tuple[list[RegisterFace], NDArray[np.float32]]:
        kept = [
            (face, row[-1])
            for row in self._session.execute(query).all()
            if (face := _register_face(row)) is not None
        ]
        return [f for f, _ in kept], decode_vectors([v for _, v in kept], dimension)


def _in_context(*extra: Any) -> Any:
    """Return a Select of what a pair records of a face (and ``extra``), each column named
    as the field of ``RegisterFace`` it fills."""
    return (
        select(
            Face.id.label("face_id"),
            Face.person_id,
            Face.photo_id,
            Person.status,
            Photo.taken_at,
            Photo.age_at_photo.label("declared_age"),
            Face.age.label("estimated_age"),
            *extra,
        )
        .join(Person, Person.id == Face.person_id)
        .join(Photo, Photo.id == Face.photo_id)
    )


def _with_vector(generation: int) -> Any:
    return (
        _in_context(Embedding.vector)
        .join(Embedding, (Embedding.face_id == Face.id) & (Embedding.generation == generation))
        .where(Person.status.in_(_IN_REGISTER))
    )


def _register_face(row: Any) -> RegisterFace | None:
    register = REGISTER_OF.get(row.status)
    if register is None:
        return None
    return RegisterFace(row.face_id, row.person_id, row.photo_id, register, row.taken_at,
                        row.declared_age, row.estimated_age)  # fmt: skip


class PairRepository:
    """Candidate pairs: one row per (missing person, found person)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def stored(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], StoredPair]:
        """Return the stored pairs among these (missing, found) person pairs."""
        wanted = set(keys)
        columns = (MatchCandidate.missing_person_id, MatchCandidate.found_person_id,
                   MatchCandidate.id, MatchCandidate.state, MatchCandidate.score)  # fmt: skip
        out = {}
        connection = self._session.connection()  # plain rows: no ORM loading for a bulk
        for chunk in chunks(sorted({m for m, _ in wanted})):  # by the indexed missing person
            query = select(*columns).where(MatchCandidate.missing_person_id.in_(chunk))
            for m, f, pair_id, state, score in connection.execute(query).tuples():
                if (m, f) in wanted:
                    out[(m, f)] = StoredPair(pair_id, state, score)
        return out

    def insert(self, pairs: Sequence[PairFields], at: datetime) -> None:
        """Insert new pending pairs in one executemany; a pair another process inserted
        meanwhile is left as it is (the next raise compares against it)."""
        if not pairs:
            return
        rows = [_columns(p, at) | {"state": MatchState.PENDING, "created_at": at} for p in pairs]
        dialect = self._session.get_bind().dialect.name
        table = cast(Table, MatchCandidate.__table__)  # a Core insert: no ORM bookkeeping
        statement = (postgresql_insert if dialect == "postgresql" else sqlite_insert)(
            table
        ).on_conflict_do_nothing(index_elements=["missing_person_id", "found_person_id"])
        self._session.execute(statement, rows)

    def raise_(self, raised: Sequence[tuple[int, PairFields]], at: datetime) -> None:
        """Replace what pairs record with better-scoring face pairs' (one executemany)."""
        if not raised:
            return
        table = cast(Table, MatchCandidate.__table__)
        rows = [{"pair_id": pair_id, **_columns(pair, at)} for pair_id, pair in raised]
        values: dict[str, Any] = {name: bindparam(name) for name in rows[0] if name != "pair_id"}
        statement = update(table).where(table.c.id == bindparam("pair_id")).values(values)
        self._session.connection().execute(statement, rows)

    def page(
        self, where: PairFilter, by_date: bool, limit: int, offset: int
    ) -> tuple[list[PairRecord], int]:
        """Return one page of pairs (best score first, or newest first) and the total."""
        query = select(MatchCandidate)
        if where.state is not None:
            query = query.where(MatchCandidate.state == where.state)
        if where.min_score is not None:
            query = query.where(MatchCandidate.score >= where.min_score)
        if where.person_id is not None:
            query = query.where(
                (MatchCandidate.missing_person_id == where.person_id)
                | (MatchCandidate.found_person_id == where.person_id)
            )
        total = self._session.execute(
            select(func.count()).select_from(query.subquery())
        ).scalar_one()
        order = (
            (MatchCandidate.raised_at.desc(), MatchCandidate.id.desc())
            if by_date
            else (MatchCandidate.score.desc(), MatchCandidate.id)
        )
        rows = list(
            self._session.execute(query.order_by(*order).limit(limit).offset(offset)).scalars()
        )
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
        return LockedPair(row.id, row.state, row.missing_person_id, row.found_person_id, before)

    def decide(
        self,
        pair_id: int,
        state: MatchState,
        by: str | None,
        at: datetime,
        note: str | None,
        statuses_before: dict[str, PersonStatus] | None = None,
    ) -> None:
        """Record a decision (and, for a confirmation, the statuses it changed)."""
        values: dict[str, Any] = {"state": state, "decided_by": by, "decided_at": at, "note": note}
        if statuses_before is not None:
            values["statuses_before"] = {k: v.value for k, v in statuses_before.items()}
        self._session.execute(
            update(MatchCandidate).where(MatchCandidate.id == pair_id).values(**values)
        )

    # --- export and import of decided pairs --------------------------------------------
    def decided_involving(self, person_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Return decided pairs with a side among ``person_ids`` as export items: the
        exported columns, each side's photo named by its SHA-256."""
        out: dict[int, dict[str, Any]] = {}
        for chunk in chunks(person_ids, 1000):
            rows = self._session.execute(
                select(MatchCandidate).where(
                    MatchCandidate.state != MatchState.PENDING,
                    or_(
                        MatchCandidate.missing_person_id.in_(chunk),
                        MatchCandidate.found_person_id.in_(chunk),
                    ),
                )
            ).scalars()
            for row in rows:
                if row.id not in out:
                    item = {c: getattr(row, c) for c in EXPORTED_COLUMNS}
                    item["missing_photo_sha256"] = self._sha(row.missing_photo_id)
                    item["found_photo_sha256"] = self._sha(row.found_photo_id)
                    out[row.id] = item
        return [out[k] for k in sorted(out)]

    def restore(
        self,
        item: dict[str, Any],
        missing: tuple[str, int],
        found: tuple[str, int],
        write: bool = True,
    ) -> bool:
        """Write an exported decided pair unless it is decided here already (``write``
        false: only say whether it would be); ``missing`` and ``found`` are the (photo id,
        face id) of each side here."""
        row = self._session.execute(
            select(MatchCandidate).where(
                MatchCandidate.missing_person_id == item["missing_person_id"],
                MatchCandidate.found_person_id == item["found_person_id"],
            )
        ).scalar_one_or_none()
        if row is not None and row.state != MatchState.PENDING:
            return False
        if not write:
            return True
        if row is None:
            row = MatchCandidate()
            self._session.add(row)
        for key in EXPORTED_COLUMNS:
            setattr(row, key, _parsed(key, item.get(key)))
        row.missing_photo_id, row.missing_face_id = missing
        row.found_photo_id, row.found_face_id = found
        return True

    # --- the batch run ----------------------------------------------------------------
    def run_start(self) -> int:
        """Return the face id the batch run resumes after (a finished run starts over)."""
        run = self._run()
        if run.finished_at is not None:
            run.after_face_id, run.finished_at, run.started_at = 0, None, utcnow()
        return int(run.after_face_id)

    def run_advance(self, after_face_id: int) -> None:
        self._run().after_face_id = after_face_id

    def run_finish(self) -> None:
        self._run().finished_at = utcnow()

    def _run(self) -> CrossmatchRun:
        run = self._session.execute(
            select(CrossmatchRun).where(CrossmatchRun.id == 1).with_for_update()
        ).scalar_one_or_none()
        if run is None:
            run = CrossmatchRun(id=1, after_face_id=0)
            self._session.add(run)
            self._session.flush()
        return run

    def _sha(self, photo_id: str) -> str | None:
        return self._session.execute(
            select(Photo.sha256).where(Photo.id == photo_id)
        ).scalar_one_or_none()

    def _records(self, rows: list[MatchCandidate]) -> list[PairRecord]:
        ids = sorted({r.missing_person_id for r in rows} | {r.found_person_id for r in rows})
        found = self._session.execute(select(Person).where(Person.id.in_(ids))).scalars()
        persons = {p.id: person_record(p) for p in found} if ids else {}
        return [_record(r, persons) for r in rows]


# What `facedb export` writes of a decided pair (photos are named by SHA-256 beside them).
EXPORTED_COLUMNS = (
    "state",
    "score",
    "rank",
    "missing_person_id",
    "found_person_id",
    "missing_taken_at",
    "found_taken_at",
    "missing_age",
    "found_age",
    "missing_age_source",
    "found_age_source",
    "years_between",
    "created_at",
    "raised_at",
    "decided_by",
    "decided_at",
    "note",
    "statuses_before",
)


def _parsed(key: str, value: Any) -> Any:
    """Return an exported value as its column takes it (dates and times come as text)."""
    if not value or not key.endswith("_at"):
        return value
    return date.fromisoformat(value) if key.endswith("taken_at") else datetime.fromisoformat(value)


def _columns(pair: PairFields, at: datetime) -> dict[str, Any]:
    return {
        "score": round(pair.score, 5),
        "rank": pair.rank,
        **pair.missing.columns(Register.MISSING),
        **pair.found.columns(Register.FOUND),
        "years_between": pair.years_between,
        "raised_at": at,
        "statuses_before": {},
    }


def _side(person: PersonRecord | None, side: PairSideColumns) -> PairSide:
    """One side as the queue shows it: without its face once the person is deleted."""
    return PairSide(
        person=person,
        face_id=side.face_id if person else None,
        photo_id=side.photo_id if person else None,
        taken_at=side.taken_at,
        age_at_photo=side.age,
        age_source=side.age_source,
    )


def _record(row: MatchCandidate, persons: dict[str, PersonRecord]) -> PairRecord:
    missing = _side(persons.get(row.missing.person_id), row.missing)
    found = _side(persons.get(row.found.person_id), row.found)
    decision = (
        Decision(by=row.decided_by, at=row.decided_at, note=row.note) if row.decided_at else None
    )
    return PairRecord(
        id=row.id,
        state=row.state,
        score=row.score,
        rank=row.rank,
        years_between=row.years_between,
        missing=missing,
        found=found,
        created_at=row.created_at,
        raised_at=row.raised_at,
        decision=decision,
    )

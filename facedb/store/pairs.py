"""Cross-matching's data: the faces of each register, the candidate pairs, the batch run.

Data only: what a pair's checks say is decided by ``casework/checks.py`` (and its age check
put in words there); the store writes and reads the columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from typing import Any, NamedTuple, Protocol, cast

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import (
    Table,
    bindparam,
    delete,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from facedb.domain import REGISTER_OF, AgeVerdict, MatchState, PairOrder, PersonStatus, Register
from facedb.records import (
    Claim,
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


class CheckValues(Protocol):
    """What a pair's checks store (``casework/checks.py`` decides them)."""

    def values(self) -> tuple[Any, ...]:
        """The columns of _CHECKS, in that order: state, age verdict, expected age,
        estimated age, gender conflict, warnings."""
        ...


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
class PairFields:
    """What a pair records when a face pair raises it."""

    score: float
    missing: PairSideColumns
    found: PairSideColumns
    years_between: float | None
    checks: CheckValues

    @property
    def key(self) -> tuple[str, str]:
        return self.missing.person_id, self.found.person_id


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

    def vectors(
        self, register: Register, generation: int, dimension: int, batch: int = 20_000
    ) -> tuple[NDArray[np.int64], list[RegisterFace], NDArray[np.float32]]:
        """Return every face of ``register``'s persons: ids, what a pair records of each,
        and vectors, by id."""
        ids: list[int] = []
        faces: list[RegisterFace] = []
        blobs: list[bytes] = []
        after = -1
        statuses = list(register.statuses)
        while True:
            query = (
                _with_vector(generation)
                .where(Person.status.in_(statuses), Face.id > after)
                .order_by(Face.id)
                .limit(batch)
            )
            rows = self._session.execute(query).all()
            if not rows:
                break
            for row in rows:
                face = _register_face(row)
                if face is not None:
                    ids.append(face.face_id)
                    faces.append(face)
                    blobs.append(row[-1])
            after = int(rows[-1].face_id)
        return np.asarray(ids, dtype=np.int64), faces, decode_vectors(blobs, dimension)

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
            Face.gender.label("estimated_gender"),
            Person.gender,
            Person.birth_date,
            Person.birth_year,
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
                        row.declared_age, row.estimated_age, row.estimated_gender, row.gender,
                        row.birth_date, row.birth_year)  # fmt: skip


class PairRepository:
    """Candidate pairs: one row per (missing person, found person)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def upsert(self, pairs: Sequence[PairFields], at: datetime, raise_by: float) -> int:
        """Insert new pairs (pending, or impossible by their age check) and raise undecided
        ones a face pair now beats by more than ``raise_by`` (its sides and checks replace
        the stored ones); one executemany. Return how many rows were written: a pair
        scoring no better, or decided, or superseded, is left as it is."""
        if not pairs:
            return 0
        connection = self._session.connection()
        upsert = _Upsert.of(connection.dialect, raise_by)
        if upsert.sql is None:  # PostgreSQL: SQLAlchemy batches the rows into few statements
            rows = [_columns(p, at) | {"created_at": at, "evidence": 0.0} for p in pairs]
            return int(connection.execute(upsert.statement, rows).rowcount or 0)
        # SQLite runs each row on its own anyway: hand the driver ready-made tuples rather
        # than have every row go through SQLAlchemy's generic parameter processing.
        return int(connection.exec_driver_sql(upsert.sql, upsert.rows(pairs, at)).rowcount or 0)

    def rewrite(self, rows: Sequence[dict[str, Any]]) -> None:
        """Set columns of pairs by id (``pair_id`` in each row, the same columns in all)."""
        if not rows:
            return
        table = cast(Table, MatchCandidate.__table__)
        values: dict[str, Any] = {name: bindparam(name) for name in rows[0] if name != "pair_id"}
        statement = update(table).where(table.c.id == bindparam("pair_id")).values(values)
        self._session.connection().execute(statement, rows)

    def settle(self, person_ids: Sequence[str] | None, floor: float) -> None:
        """Work out again the evidence of every pair of these persons (None: of every pair):
        the score's margin over the missing person's next-best candidate and over the found
        person's, averaged; a person without another candidate counts ``floor`` as their
        next-best. Set-based (one statement per chunk of persons); rows whose evidence is
        unchanged are not written."""
        if person_ids is None:
            everything = _SETTLE.format(scope="", missing_side="", found_side="")
            self._session.execute(text(everything), {"floor": floor})
            return
        scoped = _SETTLE.format(
            scope=_SCOPE,
            missing_side=f"AND missing_person_id IN {_NEIGHBOURS}",
            found_side=f"AND found_person_id IN {_NEIGHBOURS}",
        )
        statement = text(scoped).bindparams(bindparam("persons", expanding=True))
        for chunk in chunks(sorted(set(person_ids)), 1000):
            self._session.execute(statement, {"floor": floor, "persons": chunk})

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
    ) -> None:
        """Record a decision (and, for a confirmation, the statuses it changed)."""
        values: dict[str, Any] = {"state": state, "decided_by": by, "decided_at": at, "note": note,
                                  "superseded_by": None, "claimed_by": None,
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

    # --- export and import of decided pairs --------------------------------------------
    def decided_involving(self, person_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Return decided pairs with a side among ``person_ids`` as export items: the
        exported columns, each side's photo named by its SHA-256."""
        out: dict[int, dict[str, Any]] = {}
        for chunk in chunks(person_ids, 1000):
            rows = self._session.execute(
                select(MatchCandidate).where(
                    MatchCandidate.state != MatchState.PENDING, involving(chunk)
                )
            ).scalars()
            for row in rows:
                if row.id not in out:
                    item = {c: getattr(row, c) for c in EXPORTED_COLUMNS}
                    item["missing_photo_sha256"] = self._sha(row.missing_photo_id)
                    item["found_photo_sha256"] = self._sha(row.found_photo_id)
                    out[row.id] = item
        return [out[k] for k in sorted(out)]

    def decided_between(self, missing_person_id: str, found_person_id: str) -> bool:
        """Return whether these two persons' pair is decided here (confirmed or rejected)."""
        state = self._session.execute(
            select(MatchCandidate.state).where(
                MatchCandidate.missing_person_id == missing_person_id,
                MatchCandidate.found_person_id == found_person_id,
            )
        ).scalar_one_or_none()
        return state is not None and MatchState(state).decided

    def restore(
        self, item: dict[str, Any], missing: tuple[str, int], found: tuple[str, int]
    ) -> int:
        """Write an exported decided pair over its pending twin (or as a new pair); return
        its id. ``missing`` and ``found`` are the (photo id, face id) of each side here."""
        row = self._session.execute(
            select(MatchCandidate).where(
                MatchCandidate.missing_person_id == item["missing_person_id"],
                MatchCandidate.found_person_id == item["found_person_id"],
            )
        ).scalar_one_or_none()
        if row is None:
            row = MatchCandidate()
            self._session.add(row)
        for key in EXPORTED_COLUMNS:
            setattr(row, key, _parsed(key, item.get(key)))
        row.missing_photo_id, row.missing_face_id = missing
        row.found_photo_id, row.found_face_id = found
        row.superseded_by = None
        self._session.flush()
        return int(row.id)

    # --- the batch run ----------------------------------------------------------------
    def run_start(self) -> tuple[Register, int]:
        """Return the register and face id the batch run resumes after (a finished run
        starts over)."""
        run = self._run()
        if run.finished_at is not None:
            run.register, run.after_face_id = Register.MISSING, 0
            run.finished_at, run.started_at = None, utcnow()
        return Register(run.register), int(run.after_face_id)

    def run_advance(self, register: Register, after_face_id: int) -> None:
        run = self._run()
        run.register, run.after_face_id = register, after_face_id

    def run_finish(self) -> None:
        self._run().finished_at = utcnow()

    def _run(self) -> CrossmatchRun:
        run = self._session.execute(
            select(CrossmatchRun).where(CrossmatchRun.id == 1).with_for_update()
        ).scalar_one_or_none()
        if run is None:
            run = CrossmatchRun(id=1, register=Register.MISSING, after_face_id=0)
            self._session.add(run)
            self._session.flush()
        return run

    def _sha(self, photo_id: str | None) -> str | None:
        if photo_id is None:  # an erased side
            return None
        return self._session.execute(
            select(Photo.sha256).where(Photo.id == photo_id)
        ).scalar_one_or_none()

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


# What `facedb export` writes of a decided pair (photos are named by SHA-256 beside them).
EXPORTED_COLUMNS = (
    "state",
    "score",
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


# Evidence, set-based: each person's best and second-best candidate (``top2``), then every
# pair in scope against its two persons' best others. {scope} restricts it to the pairs of
# some persons, {missing_side} and {found_side} the top two to the persons those pairs involve.
_SETTLE = """
WITH sides AS (
  SELECT missing_person_id AS person, id, score FROM match_candidates
  WHERE 1 = 1 {missing_side}
  UNION ALL
  SELECT found_person_id AS person, id, score FROM match_candidates
  WHERE 1 = 1 {found_side}
), ranked AS (
  SELECT person, id, score,
         row_number() OVER (PARTITION BY person ORDER BY score DESC, id) AS place
  FROM sides
), top2 AS (
  SELECT person,
         max(CASE WHEN place = 1 THEN id END) AS best_id,
         max(CASE WHEN place = 1 THEN score END) AS best,
         max(CASE WHEN place = 2 THEN score END) AS second
  FROM ranked WHERE place <= 2 GROUP BY person
), settled AS (
  SELECT mc.id AS id, mc.score - 0.5 * (
      (CASE WHEN tm.best_id = mc.id THEN coalesce(tm.second, :floor) ELSE tm.best END)
    + (CASE WHEN tf.best_id = mc.id THEN coalesce(tf.second, :floor) ELSE tf.best END)
  ) AS value
  FROM match_candidates mc
  JOIN top2 tm ON tm.person = mc.missing_person_id
  JOIN top2 tf ON tf.person = mc.found_person_id
  WHERE 1 = 1 {scope}
)
UPDATE match_candidates SET evidence = settled.value
FROM settled
WHERE settled.id = match_candidates.id
  AND abs(match_candidates.evidence - settled.value) > 1e-9
"""
_SCOPE = "AND (mc.missing_person_id IN :persons OR mc.found_person_id IN :persons)"
# The persons of the pairs in scope: their top two are the ones the scope's pairs need.
_NEIGHBOURS = """(
  SELECT missing_person_id FROM match_candidates
  WHERE missing_person_id IN :persons OR found_person_id IN :persons
  UNION
  SELECT found_person_id FROM match_candidates
  WHERE missing_person_id IN :persons OR found_person_id IN :persons)"""

_OPEN = ", ".join(f"'{state.value}'" for state in MatchState if state.open)
_SIDE = ("person_id", "face_id", "photo_id", "taken_at", "age", "age_source")
_CHECKS = ("state", "age_verdict", "expected_age", "estimated_age", "gender_conflict", "warnings")
_UPSERTED = (
    "score", *(f"missing_{n}" for n in _SIDE), *(f"found_{n}" for n in _SIDE),
    "years_between", *_CHECKS, "raised_at", "statuses_before",
)  # fmt: skip
_INSERTED = (*_UPSERTED, "created_at", "evidence")


@dataclass(frozen=True)
class _Upsert:
    """The pair upsert for one dialect: the statement, and (SQLite) its SQL with the
    conversion of each column's values to what the driver takes."""

    statement: Any
    sql: str | None  # SQLite: parameters in the order of _INSERTED
    convert: dict[str, Any]  # column → the column type's conversion (None: as it is)

    @classmethod
    @cache
    def of(cls, dialect: Dialect, raise_by: float) -> _Upsert:
        table = cast(Table, MatchCandidate.__table__)  # a Core statement: no ORM bookkeeping
        insert = (postgresql_insert if dialect.name == "postgresql" else sqlite_insert)(table)
        # Literals, not parameters: one statement serves every row of the executemany.
        better = f"match_candidates.score + {float(raise_by)!r}"
        statement = insert.on_conflict_do_update(
            index_elements=["missing_person_id", "found_person_id"],
            set_={name: insert.excluded[name] for name in _UPSERTED},
            where=text(f"match_candidates.state IN ({_OPEN}) AND excluded.score > {better}"),
        )
        convert = {n: table.c[n].type.bind_processor(dialect) for n in _INSERTED}
        if dialect.name == "postgresql":
            return cls(statement, None, convert)
        sql = (
            f"INSERT INTO match_candidates ({', '.join(_INSERTED)}) "
            f"VALUES ({', '.join('?' for _ in _INSERTED)}) "
            "ON CONFLICT (missing_person_id, found_person_id) DO UPDATE SET "
            + ", ".join(f"{n} = excluded.{n}" for n in _UPSERTED)
            + f" WHERE match_candidates.state IN ({_OPEN}) AND excluded.score > {better}"
        )
        return cls(statement, sql, convert)

    def rows(self, pairs: Sequence[PairFields], at: datetime) -> list[tuple[Any, ...]]:
        """Return the driver's parameter tuples (in _INSERTED's order). A side or a check
        shared by many pairs is converted once."""
        missing: dict[int, tuple[Any, ...]] = {}
        found: dict[int, tuple[Any, ...]] = {}
        checks: dict[int, tuple[Any, ...]] = {}
        moment = self._values(("raised_at", "statuses_before", "created_at", "evidence"),
                              (at, {}, at, 0.0))  # fmt: skip
        out: list[tuple[Any, ...]] = []
        append = out.append
        for pair in pairs:
            m = missing.get(id(pair.missing))
            if m is None:
                m = missing[id(pair.missing)] = self._side(pair.missing, "missing")
            f = found.get(id(pair.found))
            if f is None:
                f = found[id(pair.found)] = self._side(pair.found, "found")
            c = checks.get(id(pair.checks))
            if c is None:
                c = checks[id(pair.checks)] = self._values(_CHECKS, pair.checks.values())
            append((round(pair.score, 5), *m, *f, pair.years_between, *c, *moment))
        return out

    def _side(self, side: PairSideColumns, name: str) -> tuple[Any, ...]:
        return self._values(tuple(f"{name}_{n}" for n in _SIDE), side.values())

    def _values(self, names: tuple[str, ...], values: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(
            f(v) if (f := self.convert[n]) is not None and v is not None else v
            for n, v in zip(names, values, strict=True)
        )


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


def _columns(pair: PairFields, at: datetime) -> dict[str, Any]:
    return {
        "score": round(pair.score, 5),
        **pair.missing.columns(Register.MISSING),
        **pair.found.columns(Register.FOUND),
        "years_between": pair.years_between,
        **check_columns(pair.checks),
        "raised_at": at,
        "statuses_before": {},
    }


def check_columns(checks: CheckValues) -> dict[str, Any]:
    """The checks' values by their columns' names."""
    return dict(zip(_CHECKS, checks.values(), strict=True))


def _side(person: PersonRecord | None, side: PairSideColumns) -> PairSide:
    """One side as the queue shows it: without its face once the person is erased (its
    photo's warning is the casework's to add)."""
    return PairSide(
        person=person,
        person_id=side.person_id,
        face_id=side.face_id if person else None,
        photo_id=side.photo_id if person else None,
        taken_at=side.taken_at,
        age_at_photo=side.age,
        age_source=side.age_source,
        photo_warning=None,
    )


def _record(row: MatchCandidate, persons: dict[str, PersonRecord], rank: int) -> PairRecord:
    """The pair as the queue shows it, but for its age check in words (``casework``'s)."""
    missing = _side(persons.get(row.missing.person_id), row.missing)
    found = _side(persons.get(row.found.person_id), row.found)
    decision = (
        Decision(by=row.decided_by, at=row.decided_at, note=row.note) if row.decided_at else None
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

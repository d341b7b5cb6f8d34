"""How pairs are written: the per-database upsert a cross-match raises them with, and the
evidence SQL that settles each pair's margin over its persons' next-best candidates.

The upsert keeps a pair's best score (a lower one never overwrites it, and decided pairs are
never touched); the evidence is set-based, one statement per settle, on both databases.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, Protocol, cast

from sqlalchemy import Table, bindparam, text, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from facedb.domain import MatchState, Register
from facedb.store.models import MatchCandidate, PairSideColumns
from facedb.store.rows import chunks


class CheckValues(Protocol):
    """What a pair's checks store (``casework/checks.py`` decides them)."""

    def values(self) -> tuple[Any, ...]:
        """The columns of _CHECKS, in that order: state, age verdict, expected age,
        estimated age, gender conflict, warnings."""
        ...


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


def upsert(session: Session, pairs: Sequence[PairFields], at: datetime, raise_by: float) -> int:
    """Insert new pairs (pending, or impossible by their age check) and raise undecided
    ones a face pair now beats by more than ``raise_by`` (its sides and checks replace
    the stored ones); one executemany. Return how many rows were written: a pair
    scoring no better, or decided, or superseded, is left as it is."""
    if not pairs:
        return 0
    connection = session.connection()
    upsert = _Upsert.of(connection.dialect, raise_by)
    if upsert.sql is None:  # PostgreSQL: SQLAlchemy batches the rows into few statements
        rows = [_columns(p, at) | {"created_at": at, "evidence": 0.0} for p in pairs]
        return int(connection.execute(upsert.statement, rows).rowcount or 0)
    # SQLite runs each row on its own anyway: hand the driver ready-made tuples rather
    # than have every row go through SQLAlchemy's generic parameter processing.
    return int(connection.exec_driver_sql(upsert.sql, upsert.rows(pairs, at)).rowcount or 0)


def rewrite(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Set columns of pairs by id (``pair_id`` in each row, the same columns in all)."""
    if not rows:
        return
    table = cast(Table, MatchCandidate.__table__)
    values: dict[str, Any] = {name: bindparam(name) for name in rows[0] if name != "pair_id"}
    statement = update(table).where(table.c.id == bindparam("pair_id")).values(values)
    session.connection().execute(statement, rows)


def settle(session: Session, person_ids: Sequence[str] | None, floor: float) -> None:
    """Work out again the evidence of every pair of these persons (None: of every pair):
    the score's margin over the missing person's next-best candidate and over the found
    person's, averaged; a person without another candidate counts ``floor`` as their
    next-best. Set-based (one statement per chunk of persons); rows whose evidence is
    unchanged are not written."""
    if person_ids is None:
        everything = _SETTLE.format(scope="", missing_side="", found_side="")
        session.execute(text(everything), {"floor": floor})
        return
    scoped = _SETTLE.format(
        scope=_SCOPE,
        missing_side=f"AND missing_person_id IN {_NEIGHBOURS}",
        found_side=f"AND found_person_id IN {_NEIGHBOURS}",
    )
    statement = text(scoped).bindparams(bindparam("persons", expanding=True))
    for chunk in chunks(sorted(set(person_ids)), 1000):
        session.execute(statement, {"floor": floor, "persons": chunk})


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

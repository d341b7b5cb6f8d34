"""What the indexes follow: the change log, the active embedding generation, and the mark
of a shared (Milvus) index."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from facedb.domain import ChangeOp
from facedb.store.models import Change, IndexState, SharedIndex, utcnow


@dataclass(frozen=True)
class ChangeEntry:
    """One entry of the log: a face added or removed, or a generation switched in."""

    id: int
    op: ChangeOp
    face_id: int | None


@dataclass(frozen=True)
class GenerationState:
    """The embedding generation every index serves, and the recipe that made it."""

    generation: int
    model_name: str
    model_version: str


@dataclass(frozen=True)
class SharedMark:
    """The collection serving a shared index, and how far the log is applied to it."""

    collection: str
    generation: int
    model_version: str
    last_change: int
    gaps: dict[int, float]  # change ids below last_change not yet seen -> first missed at


class ChangeLog:
    """Append-only: every write that changes the set of indexed faces adds entries in its
    own transaction; every index applies them in order."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def log(self, op: ChangeOp, face_ids: Sequence[int | None]) -> None:
        self._session.add_all([Change(op=op, face_id=f) for f in face_ids])

    def last_id(self) -> int:
        return int(
            self._session.execute(select(func.coalesce(func.max(Change.id), 0))).scalar_one()
        )

    def after(self, after_id: int, limit: int) -> list[ChangeEntry]:
        rows = self._session.execute(
            select(Change).where(Change.id > after_id).order_by(Change.id).limit(limit)
        ).scalars()
        return [_entry(c) for c in rows]

    def with_ids(self, ids: Sequence[int]) -> list[ChangeEntry]:
        if not ids:
            return []
        rows = self._session.execute(select(Change).where(Change.id.in_(list(ids)))).scalars()
        return [_entry(c) for c in rows]

    def ids_between(self, low: int, high: int) -> list[int]:
        """Return the ids of visible changes with ``low < id <= high``."""
        query = select(Change.id).where(Change.id > low, Change.id <= high)
        return [int(i) for i in self._session.execute(query).scalars()]


def _entry(change: Change) -> ChangeEntry:
    return ChangeEntry(int(change.id), ChangeOp(change.op), change.face_id)


class Generations:
    """The single index-state row: which generation of embeddings the indexes serve."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def active(self, model_name: str, model_version: str) -> GenerationState:
        """Return the active generation, creating generation 1 of this recipe on first use."""
        state = self._session.get(IndexState, 1)
        if state is None:
            try:
                with self._session.begin_nested():
                    self._session.add(
                        IndexState(
                            id=1, generation=1, model_name=model_name, model_version=model_version
                        )
                    )
            except IntegrityError:  # another process created it first
                pass
            state = self._session.get(IndexState, 1, populate_existing=True)
            assert state is not None
        return GenerationState(state.generation, state.model_name, state.model_version)

    def lock(self) -> tuple[int, str | None]:
        """Return the active generation and its model version, holding a shared row lock
        until commit (PostgreSQL); (1, None) before the state row exists.

        Enrollment takes this lock so that a re-embed cannot switch generations between the
        moment an enrollment picks a generation and the moment it commits.
        """
        row = self._session.execute(
            select(IndexState.generation, IndexState.model_version)
            .where(IndexState.id == 1)
            .with_for_update(read=True)
        ).one_or_none()
        return (int(row[0]), str(row[1])) if row is not None else (1, None)

    def switch(self, generation: int, model_name: str, model_version: str) -> None:
        """Make ``generation`` (embedded by that recipe) the active one."""
        self._session.execute(
            update(IndexState)
            .where(IndexState.id == 1)
            .values(generation=generation, model_name=model_name, model_version=model_version)
        )


class SharedMarks:
    """One row per shared collection name (``FACEDB_MILVUS_COLLECTION``).

    A process applies changes while it holds the row's lock (taken by an UPDATE, so it
    serialises appliers on SQLite as on PostgreSQL) and moves the mark in the same
    transaction; a crash mid-apply leaves the old mark and the next applier repeats the
    batch, which is idempotent.
    """

    def __init__(self, session: Session) -> None:
        self._session = session

    def read(self, name: str) -> SharedMark:
        """Return the mark (no lock), creating an empty row on first use."""
        return _mark(self._row(name))

    def claim(self, name: str) -> SharedMark:
        """Return the mark, its row locked until the transaction ends."""
        self._row(name)
        self._session.execute(
            update(SharedIndex).where(SharedIndex.name == name).values(updated_at=utcnow())
        )
        return _mark(self._row(name))

    def write(self, name: str, mark: SharedMark) -> None:
        """Set the row (call after ``claim`` in the same transaction)."""
        row = self._row(name)
        row.collection, row.generation = mark.collection, mark.generation
        row.model_version, row.last_change = mark.model_version, mark.last_change
        row.gaps = {str(k): v for k, v in sorted(mark.gaps.items())}

    def _row(self, name: str) -> SharedIndex:
        row = self._session.get(SharedIndex, name, populate_existing=True)
        if row is not None:
            return row
        try:
            with self._session.begin_nested():
                self._session.add(SharedIndex(name=name, collection="", gaps={}))
        except IntegrityError:  # another process created it first
            pass
        row = self._session.get(SharedIndex, name, populate_existing=True)
        assert row is not None
        return row


def _mark(row: SharedIndex) -> SharedMark:
    gaps = {int(k): float(v) for k, v in (row.gaps or {}).items()}
    return SharedMark(row.collection, row.generation, row.model_version, row.last_change, gaps)

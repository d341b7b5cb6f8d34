"""One follower of the change log, whichever backend holds the vectors.

The database is the system of record. Every write that changes the set of indexed faces
appends entries to the ``changes`` table in the same transaction; the follower applies them,
in order, to the index it serves, and moves its mark (the last change applied, and the gaps
below it). Where the vectors and the mark live is a small strategy, the ``Home``:

- ``LocalHome``: a FAISS index in this process's memory; the mark in memory, saved with a
  snapshot on disk. Each process applies every change itself.
- ``SharedHome``: one Milvus collection every process shares; the mark in a database row.
  Whichever process has work locks that row, applies, and moves the mark in the same
  transaction, so one applies at a time.

Applying a change is idempotent (an add re-reads the vector from the database and a face
deleted since is skipped; removing an absent id does nothing; face ids are never reused),
so a batch repeated after a crash does no harm.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from facedb.domain import ChangeOp
from facedb.index.base import VectorIndex
from facedb.index.cursor import ChangeCursor
from facedb.pipeline.base import Analyzer
from facedb.records import AGE_AXIS_TAG
from facedb.store.changes import ChangeEntry, GenerationState
from facedb.store.unit import Store, Unit

log = logging.getLogger(__name__)

CHANGE_BATCH = 10_000
# How far below the covered change a rebuild looks for ids still in flight. A transaction
# that took its change id more than this many ids ago and has not committed is not waited for.
GAP_WINDOW = 10_000

Sink = Callable[[NDArray[np.int64], NDArray[np.float32]], None]
Progress = Callable[[int], None]


@dataclass(frozen=True)
class Serving:
    """The index a process searches, the generation of embeddings it holds, and its mark."""

    index: VectorIndex
    generation: int
    model_version: str
    cursor: ChangeCursor


@dataclass(frozen=True)
class Coverage:
    """What a rebuild read: the last change id its embeddings include, and the ids below it
    that were not yet visible (transactions still in flight)."""

    covered: int
    unseen: list[int]


class Look(Enum):
    """What a lock-free look at the mark says to do."""

    NOTHING = "nothing"  # the log holds nothing this index has not applied
    APPLY = "apply"  # changes wait
    REFRESH = "refresh"  # the serving index is stale or was replaced: refresh first


class Home(Protocol):
    """Where a follower's vectors and mark live."""

    def resume(self, active: GenerationState, last_change: int) -> Serving | None:
        """Return what to serve when a saved index fits the active generation (a snapshot,
        the collection the shared mark names), else None: rebuild."""
        ...

    def build(
        self, generation: int, dimension: int, fill: Callable[[Sink], Coverage]
    ) -> tuple[VectorIndex, Coverage]:
        """Return a new index of ``generation`` (vectors of ``dimension``) that ``fill``
        filled (not serving yet)."""
        ...

    def install(self, unit: Unit, built: Serving, previous: Serving, coverage: Coverage) -> Serving:
        """Make a built index the one served (under the apply lock); return it with the
        mark to serve it with."""
        ...

    def retire(self, previous: Serving, current: Serving) -> None:
        """Let go of the index a rebuild replaced."""
        ...

    def look(self, unit: Unit, serving: Serving) -> tuple[Look, ChangeCursor | None]:
        """Say, without a lock, whether there is work; with NOTHING, the mark as others
        left it (the follower keeps it)."""
        ...

    def claim(self, unit: Unit, serving: Serving) -> Serving | None:
        """Lock the mark for an apply; return what to apply to (the serving index, or the
        collection another process switched to), or None when only a refresh can help."""
        ...

    def record(self, unit: Unit, cursor: ChangeCursor) -> None:
        """Keep the moved mark (in the same transaction as the claim)."""
        ...

    def count(self, serving: Serving) -> int:
        """How many vectors the serving index holds."""
        ...

    def save(self, serving: Serving) -> None:
        """Persist what is served, if this home keeps anything of it."""
        ...

    def check(self, serving: Serving) -> None:
        """Raise IndexUnavailable, saying why, unless the serving index answers searches
        now; start whatever brings it back (a Milvus server restarted: load the collection)."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class _Batch:
    applied: int
    more: bool  # the batch was full: read again
    refresh: bool  # a re-embed switched generations, or the serving index is gone


class ChangeFollower:
    """Keeps one served index equal to the database's change log."""

    def __init__(self, store: Store, home: Home, empty: Serving, analyzer: Analyzer) -> None:
        self.store = store
        self.home = home
        self.serving = empty
        self.analyzer = analyzer
        self.apply_lock = threading.Lock()
        self.applied_since_save = 0

    # --- start-up and rebuilds ---------------------------------------------------------
    def start(self) -> None:
        """Serve what was saved if it fits the database, else rebuild; then catch up."""
        self.refresh()
        self.catch_up()

    def refresh(self) -> None:
        """Serve the active generation: what the home kept of it, else a rebuild."""
        with self.store.unit() as unit:
            active = self.active(unit)
            last = unit.changes.last_id()
        self.know(active.model_version)
        self.adopt(active.model_version)
        resumed = self.home.resume(active, last)
        if resumed is None:
            self.rebuild()
            return
        with self.apply_lock:
            self.serving = resumed

    def active(self, unit: Unit) -> GenerationState:
        return unit.generations.active(self.analyzer.model_name, self.serving.model_version)

    def rebuild(self, progress: Progress | None = None) -> None:
        """Fill a new index from the database beside the serving one, then swap it in."""
        with self.store.unit() as unit:
            active = self.active(unit)
        self.know(active.model_version)
        dimension = self.analyzer.recipes.of(active.model_version).dimension
        index, coverage = self.home.build(
            active.generation,
            dimension,
            lambda sink: self.read_database(active.generation, dimension, sink, progress),
        )
        built = Serving(index, active.generation, active.model_version, ChangeCursor())
        with self.apply_lock, self.store.unit() as unit:
            previous = self.serving
            self.serving = self.home.install(unit, built, previous, coverage)
            self.adopt(active.model_version)
        self.home.retire(previous, self.serving)
        self.catch_up()
        self.save(force=True)

    def read_database(
        self, generation: int, dimension: int, sink: Sink, progress: Progress | None
    ) -> Coverage:
        """Hand every embedding of ``generation`` to ``sink`` in chunks; return the change
        id they cover and the ids below it not yet visible.

        The change id is read before the embeddings, so replaying from it can only repeat
        (idempotently) what the index already holds.
        """
        with self.store.unit() as unit:
            covered = unit.changes.last_id()
            low = max(0, covered - GAP_WINDOW)
            seen = set(unit.changes.ids_between(low, covered))
            unseen = [i for i in range(low + 1, covered) if i not in seen]
            for ids, vectors in unit.embeddings.each(generation, dimension):
                sink(ids, vectors)
                if progress:
                    progress(len(ids))
        return Coverage(covered, unseen)

    def know(self, model_version: str) -> None:
        """Make a recipe this database learned (an age axis removed, ``age_axes``) known to
        this process, so it can embed searches the way the served faces were."""
        if self.analyzer.recipes.knows(model_version) or AGE_AXIS_TAG not in model_version:
            return
        with self.store.unit() as unit:
            axis = unit.age_axes.get(model_version)
        if axis is not None:
            self.analyzer.recipes.add_axis(axis)

    def adopt(self, model_version: str) -> None:
        """Tell the analyzer when the served embeddings are another recipe's, so queries are
        embedded alike."""
        if model_version != self.serving.model_version:
            log.info("index embeddings are model version %s", model_version)
        self.analyzer.use(model_version)

    # --- following -----------------------------------------------------------------------
    def catch_up(self) -> int:
        """Apply every committed change not applied yet; return how many were applied."""
        with self.store.unit() as unit:
            look, mark = self.home.look(unit, self.serving)
        if look is Look.REFRESH:
            self.refresh()
        elif look is Look.NOTHING:
            if mark is not None:
                self.serving = _with_cursor(self.serving, mark)
            return 0
        applied = 0
        while True:
            batch = self._apply_batch()
            applied += batch.applied
            if batch.refresh:
                log.info("the index's generation was switched or replaced; refreshing")
                self.refresh()
                return applied
            if not batch.more:
                return applied

    def _apply_batch(self) -> _Batch:
        """Apply one batch of the log, and move the mark, in one database transaction."""
        with self.apply_lock, self.store.unit() as unit:
            claimed = self.home.claim(unit, self.serving)
            if claimed is None:
                return _Batch(0, False, True)
            self.serving = claimed
            cursor = claimed.cursor.copy()
            tail = unit.changes.after(cursor.last_change, CHANGE_BATCH)
            fresh = unit.changes.with_ids(list(cursor.gaps)) + tail
            if not fresh:
                cursor.expire_gaps()
                self._record(unit, cursor)
                return _Batch(0, False, False)
            switched = any(c.op == ChangeOp.GENERATION for c in fresh) and (
                self.active(unit).generation != claimed.generation
            )
            adds = [_face(c) for c in fresh if c.op == ChangeOp.ADD]
            ids, vectors = unit.embeddings.of_faces(
                claimed.generation, adds, claimed.index.dimension
            )
            removes = [_face(c) for c in fresh if c.op == ChangeOp.REMOVE]
            if len(ids):
                claimed.index.add(ids, vectors)
            if removes:
                claimed.index.remove(np.asarray(removes, dtype=np.int64))
            cursor.advance([c.id for c in fresh])
            self._record(unit, cursor)
            self.applied_since_save += len(fresh)
        return _Batch(len(fresh), len(tail) == CHANGE_BATCH, switched)

    def _record(self, unit: Unit, cursor: ChangeCursor) -> None:
        self.home.record(unit, cursor)
        self.serving = _with_cursor(self.serving, cursor)

    # --- persistence ---------------------------------------------------------------------
    def save(self, force: bool = False) -> None:
        """Persist what is served (a FAISS snapshot) if anything was applied since.

        The mark is read before the index is copied, so a saved index may hold changes
        beyond its mark (replayed, idempotently, on load) but never lacks one it claims.
        """
        if force or self.applied_since_save:
            self.applied_since_save = 0
            self.home.save(self.serving)


def _with_cursor(serving: Serving, cursor: ChangeCursor) -> Serving:
    return Serving(serving.index, serving.generation, serving.model_version, cursor)


def _face(change: ChangeEntry) -> int:
    if change.face_id is None:
        raise ValueError(f"change {change.id} ({change.op}) names no face")
    return int(change.face_id)

"""Keeps a Milvus collection that every process shares equal to the database.

The vectors live once, in the collection; no process holds a copy. The change log and its
rules are those of ``IndexSync``; what differs is where the mark lives and who applies:

- The ``shared_indexes`` row (one per ``FACEDB_MILVUS_COLLECTION``) names the collection
  serving the active generation and holds the mark: the last change applied to it, and the
  gaps below it.
- Any process may apply. It locks the row (an UPDATE, held until commit), applies the
  changes after the mark to the collection, and moves the mark in the same transaction.
  One process applies at a time, in log order, so a deletion is never overtaken by a stale
  re-add. A process searching first checks, without a lock, whether the mark is behind the
  log; a writer applies its own change before it answers its caller, so a deletion is
  honoured before the caller hears it succeeded.
- A crash mid-apply rolls back the mark: the next applier repeats the batch, which is
  idempotent (adds are upserts that re-read the vector, a face deleted since is skipped;
  deleting an absent id does nothing).
- A rebuild (``facedb reindex``, a re-embed, a collection gone missing) fills a new
  collection beside the serving one, then points the row at it with the mark of the
  change it covers, and drops the old one. Other processes switch on their next catch-up;
  a search that meets the dropped collection re-reads the row and retries once.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray
from pymilvus import MilvusClient
from sqlalchemy.orm import Session

from facedb.errors import IndexUnavailable
from facedb.index.milvus_index import MilvusIndex, connect, disconnect
from facedb.service.index_sync import ChangeCursor, IndexSync
from facedb.store import repository as repo
from facedb.store.db import transaction
from facedb.store.models import SharedIndex

log = logging.getLogger(__name__)

_T = TypeVar("_T")


class SharedIndexSync(IndexSync):
    """The shared Milvus collection and the logic that keeps it current."""

    _connected: MilvusClient | None = None  # connected on first use (start), not before
    _counted: tuple[tuple[str, int, tuple[int, ...]], int] | None = None  # (mark, count)

    @property
    def name(self) -> str:
        """The ``shared_indexes`` row and the prefix of its collections' names."""
        return self.settings.milvus_collection

    @property
    def _client(self) -> MilvusClient:
        if self._connected is None:
            self._connected = connect(self.settings.milvus_location, self.settings.milvus_token)
        return self._connected

    @property
    def collection(self) -> MilvusIndex | None:
        return self._index if isinstance(self._index, MilvusIndex) else None

    # --- start-up ------------------------------------------------------------------------
    def start(self) -> None:
        """Open the collection the row names if it serves the active generation, else
        rebuild; then catch up."""
        self._follow_or_rebuild()
        self.catch_up()
        log.info(
            "Milvus collection %s ready: %d faces, generation %d, change %d",
            self.collection.collection if self.collection else "-",
            self.count,
            self.generation,
            self.last_change,
        )

    def _follow_or_rebuild(self) -> None:
        """Serve the collection the row names when it is current, else rebuild one."""
        with transaction(self.sessions) as session:
            state = repo.index_state(session, self.model_name, self.model_version)
            row = repo.shared_index(session, self.name)
            current = row.generation == state.generation and row.collection
            named, last = row.collection, row.last_change
        index = MilvusIndex.open(self._client, named, self.dimension) if current else None
        if index is None:
            if named:
                log.warning("Milvus collection %r is missing or stale; rebuilding", named)
            self.rebuild()
            return
        with self._apply_lock:
            self._index = index
            self.generation = state.generation
            self._cursor = ChangeCursor(last)
            self._adopt(state.model_version)

    # --- rebuilds ------------------------------------------------------------------------
    def rebuild(self, progress: Callable[[int], None] | None = None) -> None:
        """Fill a new collection from the database, point the row at it, drop the old."""
        generation, version = self._active_generation()
        name = f"{self.name}_g{generation}_{uuid.uuid4().hex[:12]}"
        index = MilvusIndex.create(self._client, name, self.dimension)
        try:
            covered, unseen = self.read_database(generation, index.insert, progress)
            index.seal()
        except BaseException:
            index.drop()
            raise
        with self._apply_lock, transaction(self.sessions) as session:
            row = repo.claim_shared_index(session, self.name)
            old = row.collection
            row.collection, row.generation, row.model_version = name, generation, version
            cursor = ChangeCursor(covered, _gaps_of(row))
            cursor.add_gaps(unseen)
            _write_cursor(row, cursor)
            self._index = index
            self.generation = generation
            self._cursor = cursor
            self._adopt(version)
        if old and old != name:
            self._drop_quietly(old)
        log.info("Milvus collection %s built: generation %d", name, generation)
        self.catch_up()

    def _drop_quietly(self, collection: str) -> None:
        try:
            self._client.drop_collection(collection)
        except Exception as exc:  # a leftover collection costs space, not correctness
            log.warning("could not drop the old Milvus collection %s: %s", collection, exc)

    # --- tailing ------------------------------------------------------------------------
    def catch_up(self) -> int:
        """Apply what the shared mark has not; cheap (no lock) when nothing is pending."""
        with transaction(self.sessions) as session:
            state = repo.index_state(session, self.model_name, self.model_version)
            row = repo.shared_index(session, self.name)
            pending = bool(row.gaps) or bool(repo.changes_after(session, row.last_change, 1))
            stale = row.generation != state.generation
            moved = self.collection is None or row.collection != self.collection.collection
            mark = ChangeCursor(row.last_change, _gaps_of(row))
        if stale or moved:
            self._follow_or_rebuild()
        elif not pending:
            self._cursor = mark  # what other processes applied: keys the cached count
        return super().catch_up() if pending or stale else 0

    def _switch_generation(self) -> None:
        self._follow_or_rebuild()  # another process may have rebuilt it already

    def _claim(self, session: Session) -> ChangeCursor | None:
        row = repo.claim_shared_index(session, self.name)
        if self.collection is None or row.collection != self.collection.collection:
            index = MilvusIndex.open(self._client, row.collection, self.dimension)
            if index is None or row.generation != self.generation:
                return None  # rebuilt elsewhere for another generation, or lost: rebuild
            self._index = index
        self._cursor = ChangeCursor(row.last_change, _gaps_of(row))
        return self._cursor

    def _record(self, session: Session, cursor: ChangeCursor) -> None:
        row = session.get(SharedIndex, self.name)
        assert row is not None
        _write_cursor(row, cursor)
        self._cursor = cursor

    # --- search and lifecycle ------------------------------------------------------------
    @property
    def count(self) -> int:
        """The collection's size, counted again only when the collection or the mark (the
        last change applied and the gaps below it) moved: a count is a Milvus query (31 ms
        at 10^5 faces in Milvus Lite, as long as a search) and every search asks for it."""
        key = (
            self.collection.collection if self.collection else "",
            self._cursor.last_change,
            tuple(sorted(self._cursor.gaps)),
        )
        if self._counted is None or self._counted[0] != key:
            self._counted = (key, self._following(lambda: self._index.count))
        return self._counted[1]

    def search(
        self, queries: NDArray[np.float32], k: int
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        return self._following(lambda: IndexSync.search(self, queries, k))

    def _following(self, read: Callable[[], _T]) -> _T:
        """Run ``read``; when the collection was replaced under it (a rebuild in another
        process dropped it), follow the row to the new one and run it once more."""
        try:
            return read()
        except IndexUnavailable:
            serving = self.collection.collection if self.collection else None
            self.catch_up()
            if self.collection is None or self.collection.collection == serving:
                raise
            return read()

    def save(self) -> None:
        """Nothing to write: the vectors live in Milvus, the mark in the database."""

    def close(self) -> None:
        if self._connected is not None:
            disconnect(self._connected, self.settings.milvus_location)
            self._connected = None


def _gaps_of(row: SharedIndex) -> dict[int, float]:
    return {int(k): float(v) for k, v in (row.gaps or {}).items()}


def _write_cursor(row: SharedIndex, cursor: ChangeCursor) -> None:
    row.last_change = cursor.last_change
    row.gaps = {str(k): v for k, v in sorted(cursor.gaps.items())}

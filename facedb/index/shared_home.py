"""One Milvus collection every process shares; its mark a row of ``shared_indexes``.

The vectors live once, in the collection; no process holds a copy. The row (one per
``FACEDB_MILVUS_COLLECTION``) names the collection serving the active generation and holds
the mark: the last change applied to it, and the gaps below it.

- Any process may apply. It locks the row, applies the changes after the mark to the
  collection, and moves the mark in the same transaction: one process applies at a time, in
  log order, so a deletion is never overtaken by a stale re-add. A process about to search
  first looks, without a lock, whether the mark is behind the log; a writer applies its own
  change before it answers its caller, so a deletion is honoured before the caller hears it
  succeeded.
- A crash mid-apply rolls back the mark: the next applier repeats the batch.
- A rebuild (``facedb reindex``, a re-embed, a collection gone missing) fills a new
  collection beside the serving one, then points the row at it with the mark of the change
  it covers, and drops the old one. Other processes follow on their next look; a search
  that meets the dropped collection catches up and retries once (``FaceIndex``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from pymilvus import MilvusClient

from facedb.config import Settings
from facedb.index.base import VectorIndex
from facedb.index.cursor import ChangeCursor
from facedb.index.follower import Coverage, Look, Serving, Sink
from facedb.index.milvus_index import MilvusIndex, connect, disconnect
from facedb.pipeline.recipes import RecipeBook
from facedb.store.changes import GenerationState, SharedMark
from facedb.store.unit import Store, Unit

log = logging.getLogger(__name__)


class SharedHome:
    def __init__(
        self, settings: Settings, store: Store, model_name: str, recipes: RecipeBook
    ) -> None:
        self.settings = settings
        self.recipes = recipes
        self.store = store
        self.model_name = model_name
        self._client: MilvusClient | None = None  # connected on first use, not before
        self._counted: tuple[tuple[str, int, tuple[int, ...]], int] | None = None

    @property
    def name(self) -> str:
        """The ``shared_indexes`` row and the prefix of its collections' names."""
        return self.settings.milvus_collection

    @property
    def client(self) -> MilvusClient:
        if self._client is None:
            self._client = connect(self.settings.milvus_location, self.settings.milvus_token)
        return self._client

    def resume(self, active: GenerationState, last_change: int) -> Serving | None:
        """Serve the collection the row names when it holds the active generation."""
        with self.store.unit() as unit:
            mark = unit.marks.read(self.name)
        if mark.generation != active.generation or not mark.collection:
            return None
        dimension = self.recipes.of(active.model_version).dimension
        index = MilvusIndex.open(self.client, mark.collection, dimension)
        if index is None:
            log.warning("Milvus collection %r is missing or stale; rebuilding", mark.collection)
            return None
        return Serving(index, active.generation, active.model_version, _cursor(mark))

    def build(
        self, generation: int, dimension: int, fill: Callable[[Sink], Coverage]
    ) -> tuple[VectorIndex, Coverage]:
        name = f"{self.name}_g{generation}_{uuid.uuid4().hex[:12]}"
        index = MilvusIndex.create(self.client, name, dimension)
        try:
            coverage = fill(index.insert)
            index.seal()
        except BaseException:
            index.drop()
            raise
        log.info("Milvus collection %s built: generation %d", name, generation)
        return index, coverage

    def install(self, unit: Unit, built: Serving, previous: Serving, coverage: Coverage) -> Serving:
        """Point the row at the built collection, with the mark of what it covers."""
        mark = unit.marks.claim(self.name)
        cursor = ChangeCursor(coverage.covered, mark.gaps)
        cursor.add_gaps(coverage.unseen)
        unit.marks.write(self.name, self._mark(built, cursor))
        return Serving(built.index, built.generation, built.model_version, cursor)

    def retire(self, previous: Serving, current: Serving) -> None:
        """Drop the collection the rebuild replaced (a leftover costs space, not
        correctness: a failure is logged)."""
        old = _collection(previous)
        if old and old != _collection(current):
            try:
                self.client.drop_collection(old)
            except Exception as exc:
                log.warning("could not drop the old Milvus collection %s: %s", old, exc)

    def look(self, unit: Unit, serving: Serving) -> tuple[Look, ChangeCursor | None]:
        active = unit.generations.active(self.model_name, serving.model_version)
        mark = unit.marks.read(self.name)
        if mark.generation != active.generation or mark.collection != _collection(serving):
            return Look.REFRESH, None
        if mark.gaps or unit.changes.after(mark.last_change, 1):
            return Look.APPLY, None
        return Look.NOTHING, _cursor(mark)

    def claim(self, unit: Unit, serving: Serving) -> Serving | None:
        mark = unit.marks.claim(self.name)
        index = serving.index
        if mark.collection != _collection(serving):
            opened = MilvusIndex.open(self.client, mark.collection, serving.index.dimension)
            if opened is None or mark.generation != serving.generation:
                return None  # rebuilt elsewhere for another generation, or lost
            index = opened
        return Serving(index, serving.generation, serving.model_version, _cursor(mark))

    def record(self, unit: Unit, cursor: ChangeCursor) -> None:
        mark = unit.marks.read(self.name)
        unit.marks.write(
            self.name,
            SharedMark(
                mark.collection,
                mark.generation,
                mark.model_version,
                cursor.last_change,
                dict(cursor.gaps),
            ),
        )

    def count(self, serving: Serving) -> int:
        """The collection's size, counted again only when the collection or the mark moved:
        a count is a Milvus query (31 ms at 10^5 faces in Milvus Lite, as long as a search)
        and every search asks for it."""
        cursor = serving.cursor
        key = (_collection(serving), cursor.last_change, tuple(sorted(cursor.gaps)))
        if self._counted is None or self._counted[0] != key:
            self._counted = (key, serving.index.count)
        return self._counted[1]

    def save(self, serving: Serving) -> None:
        """Nothing to write: the vectors live in Milvus, the mark in the database."""

    def check(self, serving: Serving) -> None:
        """Ask Milvus whether the serving collection is loaded (a restarted server holds it
        released): load it in the background when it is not."""
        index = serving.index
        if isinstance(index, MilvusIndex):
            index.ready()

    def close(self) -> None:
        if self._client is not None:
            disconnect(self._client, self.settings.milvus_location)
            self._client = None

    def _mark(self, serving: Serving, cursor: ChangeCursor) -> SharedMark:
        return SharedMark(
            _collection(serving),
            serving.generation,
            serving.model_version,
            cursor.last_change,
            dict(cursor.gaps),
        )


def _collection(serving: Serving) -> str:
    index = serving.index
    return index.collection if isinstance(index, MilvusIndex) else ""


def _cursor(mark: SharedMark) -> ChangeCursor:
    return ChangeCursor(mark.last_change, dict(mark.gaps))

"""The face index the services use: search by vector, best persons first.

``FaceIndex`` serves the faces of the active embedding generation, kept equal to the
database by one ``ChangeFollower`` (its home: a FAISS index in this process, or a Milvus
collection every process shares). It owns the search lane (concurrent searches share one
index call), exact float32 re-scoring where the index keeps half-precision copies, and
``top_persons`` over it (the widening loop of ``persons.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from facedb.config import Settings
from facedb.domain import IndexBackend
from facedb.errors import IndexUnavailable
from facedb.index.cursor import ChangeCursor
from facedb.index.faiss_index import FaissIndex
from facedb.index.follower import ChangeFollower, Home, Progress, Serving
from facedb.index.lane import SearchLane
from facedb.index.local_home import LocalHome
from facedb.index.persons import Lookup, OwnerT, PersonHit, top_persons
from facedb.pipeline.base import Analyzer
from facedb.pipeline.recipes import base_version
from facedb.store.unit import Store

log = logging.getLogger(__name__)


_T = TypeVar("_T")


class FaceIndex:
    """The faces of ``analyzer``'s embeddings; it tells the analyzer which recipe made the
    embeddings it serves (``Analyzer.use``), so queries are embedded alike."""

    def __init__(self, settings: Settings, store: Store, analyzer: Analyzer) -> None:
        self.store = store
        self.settings = settings
        self.model_name = analyzer.model_name
        self.recipes = analyzer.recipes
        self.target = analyzer.target_version  # the chosen recipe (FACEDB_RECIPE)
        home: Home
        if settings.index_backend == IndexBackend.MILVUS:
            from facedb.index.shared_home import SharedHome  # imports pymilvus: only if chosen

            home = SharedHome(settings, store, self.model_name, self.recipes)
        else:
            home = LocalHome(settings, self.model_name, store.keyring, self.recipes)
        dimension = analyzer.dimension
        nothing = np.zeros((0, dimension), np.float32)
        empty = FaissIndex.build(dimension, np.zeros(0, np.int64), nothing, device="cpu")
        serving = Serving(empty, 0, analyzer.model_version, ChangeCursor())
        self._follower = ChangeFollower(store, home, serving, analyzer)
        self.lane = SearchLane(lambda queries, k: self._serving.index.search(queries, k))

    @property
    def _serving(self) -> Serving:
        return self._follower.serving

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Let an empty database take the current recipe, then serve and catch up."""
        self._take_current_recipe_if_empty()
        self._follower.start()
        log.info(
            "index ready: %d faces, generation %d, change %d",
            self.count,
            self.generation,
            self.last_change,
        )

    def _take_current_recipe_if_empty(self) -> None:
        """Embeddings of two recipes are never compared: until `facedb reindex --re-embed`
        migrates a database, the index serves (and tells the analyzer to embed with) the
        recipe that made its faces. An empty database simply takes the chosen one."""
        with self.store.unit() as unit:
            state = unit.generations.active(self.model_name, self.target)
            version = state.model_version
            if version != self.target and unit.photos.count_faces() == 0:
                unit.generations.switch(state.generation, self.model_name, self.target)
                version = self.target
        if base_version(version) != self.target:
            log.warning(
                "this database's embeddings were made by %s; searches and enrollments use it "
                "until `facedb reindex --re-embed` moves them to %s",
                version,
                self.target,
            )

    def catch_up(self) -> int:
        """Apply every committed change not applied yet; return how many were applied."""
        return self._follower.catch_up()

    def apply_own_writes(self) -> None:
        """Apply what a write just committed before its caller hears back, so their next
        search sees it. While the index is unreachable (a Milvus outage) the write stands:
        the database is the system of record, searches answer 503 until the index is back,
        and the first look after that applies it, a deletion included."""
        try:
            self.catch_up()
        except IndexUnavailable as exc:
            log.warning("the index will apply this write when it is back: %s", exc.message)

    def check(self) -> None:
        """Raise IndexUnavailable unless the index answers searches now (and start bringing
        it back: a restarted Milvus server gets its collection loaded)."""
        self._follower.home.check(self._serving)

    def rebuild(self, progress: Progress | None = None) -> None:
        """Rebuild from the database beside the serving index, then swap it in."""
        self._follower.rebuild(progress)

    def save(self, force: bool = False) -> None:
        """Write the snapshot (FAISS) if anything changed since the last (or ``force``)."""
        self._follower.save(force)

    def close(self) -> None:
        """Save the snapshot (FAISS) or let go of Milvus."""
        try:
            self._follower.save(force=True)
        except OSError as exc:
            log.warning("could not save the index snapshot: %s", exc)
        self._follower.home.close()

    # --- what it serves --------------------------------------------------------------------
    @property
    def count(self) -> int:
        return self._read(lambda: self._follower.home.count(self._serving))

    def ids(self) -> NDArray[np.int64]:
        """Every face id the serving index holds (for consistency checks)."""
        return self._read(lambda: self._serving.index.ids())

    @property
    def generation(self) -> int:
        """The embedding generation served."""
        return self._serving.generation

    @property
    def dimension(self) -> int:
        """The length of the embeddings served."""
        return self._serving.index.dimension

    @property
    def match_threshold(self) -> float:
        """FACEDB_MATCH_THRESHOLD, else the served recipe's own."""
        chosen = self.settings.match_threshold
        return self.recipes.of(self.model_version).match_threshold if chosen is None else chosen

    @property
    def candidate_threshold(self) -> float:
        """FACEDB_CANDIDATE_THRESHOLD, else the served recipe's own."""
        chosen = self.settings.candidate_threshold
        return self.recipes.of(self.model_version).candidate_threshold if chosen is None else chosen

    @property
    def model_version(self) -> str:
        """The recipe that made the embeddings served."""
        return self._serving.model_version

    @property
    def last_change(self) -> int:
        """The last change of the log applied."""
        return self._serving.cursor.last_change

    def health(self) -> dict[str, object]:
        """What ``/v1/health`` reports of the index (``available`` false, with the error,
        when the backend cannot be reached)."""
        described = self._serving.index.describe()
        try:
            self.check()
            faces = self.count
        except IndexUnavailable as exc:
            return {"available": False, "error": str(exc), **described}
        return {
            "available": True,
            "faces": faces,
            "generation": self.generation,
            **described,
            "last_change": self.last_change,
            "model_version": self.model_version,
            # Stored embeddings made by another recipe than the chosen one (an age axis
            # removed from it is that recipe still): `facedb reindex --re-embed`.
            "re_embed_required": base_version(self.model_version) != self.target,
        }

    # --- searching -------------------------------------------------------------------------
    def search(
        self, queries: NDArray[np.float32], k: int
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Return (scores, ids), each (m, k), best first; -1 ids pad missing results."""
        return self._read(lambda: self.lane.search(queries, k))

    def top_persons(
        self,
        vectors: NDArray[np.float32],
        k: int,
        lookup: Lookup[OwnerT],
        admit: Callable[[int, OwnerT], bool] | None = None,
        floor: float | None = None,
        exact: bool = True,
    ) -> list[list[PersonHit[OwnerT]]]:
        """Return, for each query vector (m, d), up to k persons best first, each once with
        their best face.

        ``lookup(face_ids)`` says whose each face is (faces it does not know, deleted since,
        are skipped); ``admit(row, owner)`` keeps a face for query ``row``. A query's list
        ends at the first score under ``floor``. Faces are fetched in widening rounds until
        every query has k persons, met the floor, or exhausted the index. ``exact``
        re-scores what a half-precision index fetched from the stored float32 embeddings, so
        every score reported is exact.
        """
        search = self._exact if exact and not self._serving.index.exact_scores else self.search
        return top_persons(search, lambda: self.count, vectors, k, lookup, admit, floor)

    def _exact(
        self, queries: NDArray[np.float32], n: int
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Search, then re-score what came back from the stored float32 embeddings."""
        scores, ids = self.search(queries, n)
        return self._rescored(queries, scores, ids)

    def _rescored(
        self, queries: NDArray[np.float32], scores: NDArray[np.float32], ids: NDArray[np.int64]
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Return the rows re-scored from the stored float32 embeddings, best first."""
        wanted = sorted({int(i) for i in ids.ravel() if i >= 0})
        with self.store.unit() as unit:
            found, vectors = unit.embeddings.of_faces(self.generation, wanted, self.dimension)
        position = {int(face_id): n for n, face_id in enumerate(found)}
        exact = scores.copy()
        for r in range(len(ids)):
            for c, face_id in enumerate(ids[r]):
                n = position.get(int(face_id))
                if n is not None:
                    exact[r, c] = float(vectors[n] @ queries[r])
        order = np.argsort(-exact, axis=1, kind="stable")
        return np.take_along_axis(exact, order, 1), np.take_along_axis(ids, order, 1)

    def _read(self, call: Callable[[], _T]) -> _T:
        """Run ``call``; when the collection was replaced under it (a rebuild in another
        process dropped it), follow to the new one and run it once more."""
        serving = self._serving.index
        try:
            return call()
        except IndexUnavailable:
            self.catch_up()
            if self._serving.index is serving:
                self.check()  # says why, and starts a reload when a restarted server needs one
                raise
            return call()

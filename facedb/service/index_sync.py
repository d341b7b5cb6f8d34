"""Keeps this process's FAISS index equal to the database.

The database is the system of record. Every write that changes the set of indexed faces
appends rows to the ``changes`` table in the same transaction. Each process:

1. on start loads its snapshot (``<data_dir>/index/faces.faiss`` + ``manifest.json``) when
   the manifest matches the database's model and generation, else rebuilds from the
   stored embeddings (a corrupt snapshot is logged and rebuilt);
2. catches up by applying the changes after the snapshot's last change id;
3. tails the change log before every search and on a timer, so several processes on one
   database all see every enrollment and deletion.

PostgreSQL may commit change ids out of order (id 11 visible before id 10). Ids not yet
seen below the highest applied id are remembered as gaps and re-read until they appear or
are a minute old (a rolled-back transaction leaves a permanent gap). A rebuild keeps the
gaps it inherits, and adds the ids below the change it covers that were not visible when it
read the log. Applying a change is idempotent: an add re-reads the vector from the
database (a face deleted since is skipped), and face ids are never reused.

A snapshot is copied in memory under the apply lock and written to disk outside it, so
searches never wait for the disk.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.orm import Session, sessionmaker

from facedb.config import Settings
from facedb.domain import ChangeOp
from facedb.index.faiss_index import FaissIndex
from facedb.index.lane import SearchLane
from facedb.store import repository as repo
from facedb.store.db import transaction
from facedb.store.models import Change

log = logging.getLogger(__name__)

GAP_PATIENCE_S = 60.0
CHANGE_BATCH = 10_000
# How far below the covered change a rebuild looks for ids still in flight. A transaction
# that took its change id more than this many ids ago and has not committed is not waited for.
GAP_WINDOW = 10_000
SNAPSHOT_FILE = "faces.faiss"
MANIFEST_FILE = "manifest.json"


@dataclass(frozen=True)
class BatchResult:
    """One batch of the change log: how many changes were applied, and what comes next."""

    applied: int
    more: bool  # the batch was full: read again
    rebuild_needed: bool  # a re-embed switched generations


class IndexSync:
    """The index, the last change applied, and the logic that keeps them current."""

    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        model_name: str,
        model_version: str,
        dimension: int,
        on_version: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.model_name = model_name
        # The model version of the active generation's embeddings; ``on_version`` is told
        # when it changes (a re-embed switched generations) so queries are embedded alike.
        self.model_version = model_version
        self.on_version = on_version
        self.dimension = dimension
        self.generation = 0
        self._index = self._empty()
        self._last_change = 0
        self._gaps: dict[int, float] = {}
        self._apply_lock = threading.Lock()
        self._save_lock = threading.Lock()
        self._changes_since_save = 0
        # Concurrent searches share index calls (and a GPU index gets its single lane).
        self._lane = SearchLane(lambda queries, k: self._index.search(queries, k))

    @property
    def index(self) -> FaissIndex:
        return self._index

    @property
    def count(self) -> int:
        return self._index.count

    @property
    def last_change(self) -> int:
        return self._last_change

    # --- start-up ------------------------------------------------------------------------
    def start(self) -> None:
        """Load the snapshot if it fits the database, else rebuild; then catch up."""
        with transaction(self.sessions) as session:
            state = repo.index_state(session, self.model_name, self.model_version)
            generation, db_last = state.generation, repo.last_change_id(session)
            self._adopt(state.model_version)
        if not self._load_snapshot(generation, db_last):
            self.rebuild()
        self.catch_up()
        log.info(
            "index ready: %d faces, generation %d, change %d",
            self.count,
            self.generation,
            self._last_change,
        )

    def _load_snapshot(self, generation: int, db_last: int) -> bool:
        folder = self.settings.index_dir
        manifest_path, snapshot = folder / MANIFEST_FILE, folder / SNAPSHOT_FILE
        if not manifest_path.is_file() or not snapshot.is_file():
            return False
        try:
            manifest = json.loads(manifest_path.read_text())
            expected = {
                "model_version": self.model_version,
                "dimension": self.dimension,
                "generation": generation,
            }
            mismatched = {k: manifest.get(k) for k, v in expected.items() if manifest.get(k) != v}
            if mismatched:
                log.warning("index snapshot discarded, it was built for %s", mismatched)
                return False
            if manifest["last_change"] > db_last:
                log.warning("index snapshot is newer than the database (restored backup?)")
                return False
            index = FaissIndex.load(
                snapshot, self.settings.index_ivf_nprobe, self.settings.index_device
            )
            if index.count != manifest["count"] or index.dimension != self.dimension:
                log.warning("index snapshot discarded: it does not match its manifest")
                return False
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            log.warning("index snapshot discarded as corrupt (%s); rebuilding", exc)
            return False
        self._index = index
        self.generation = generation
        self._last_change = int(manifest["last_change"])
        now = time.monotonic()
        self._gaps = {int(g): now for g in manifest.get("gaps", [])}
        return True

    # --- rebuilds ------------------------------------------------------------------------
    def build_from_database(
        self, generation: int, progress: Callable[[int], None] | None = None
    ) -> tuple[FaissIndex, int, list[int]]:
        """Return a new index of every embedding of ``generation``, the change id it covers,
        and the ids below that change not yet visible (transactions still in flight).

        The change id is read before the embeddings, so replaying from it can only repeat
        (idempotently) what the index already holds.
        """
        with transaction(self.sessions) as session:
            covered = repo.last_change_id(session)
            low = max(0, covered - GAP_WINDOW)
            seen = set(repo.change_ids_between(session, low, covered))
            unseen = [i for i in range(low + 1, covered) if i not in seen]
            chunks = []
            for ids, vectors in repo.iter_embeddings(session, generation, self.dimension):
                chunks.append((ids, vectors))
                if progress:
                    progress(len(ids))
        ids = np.concatenate([c[0] for c in chunks]) if chunks else np.zeros(0, np.int64)
        vectors = (
            np.concatenate([c[1] for c in chunks])
            if chunks
            else np.zeros((0, self.dimension), np.float32)
        )
        index = FaissIndex.build(
            self.dimension,
            ids,
            vectors,
            kind=self.settings.index_kind,
            nlist=self.settings.index_ivf_nlist,
            nprobe=self.settings.index_ivf_nprobe,
            device=self.settings.index_device,
        )
        return index, covered, unseen

    def rebuild(self, progress: Callable[[int], None] | None = None) -> None:
        """Rebuild from the database beside the serving index, then swap it in."""
        with transaction(self.sessions) as session:
            state = repo.index_state(session, self.model_name, self.model_version)
            generation, version = state.generation, state.model_version
        index, covered, unseen = self.build_from_database(generation, progress)
        with self._apply_lock:
            self._index = index
            self.generation = generation
            self._adopt(version)
            # Replaying from before the build re-applies what it may have missed.
            self._last_change = min(covered, self._last_change) if self._last_change else covered
            now = time.monotonic()
            for change_id in unseen:
                self._gaps.setdefault(change_id, now)
        self.catch_up()
        self.save()

    def _adopt(self, model_version: str) -> None:
        if model_version != self.model_version:
            log.info("index embeddings are model version %s", model_version)
            if self.on_version is not None:
                self.on_version(model_version)
            self.model_version = model_version

    # --- tailing ------------------------------------------------------------------------
    def catch_up(self) -> int:
        """Apply every committed change not applied yet; return how many were applied."""
        applied = 0
        while True:
            batch = self._catch_up_batch()
            applied += batch.applied
            if batch.rebuild_needed:
                log.info("a re-embed switched generations; rebuilding the index")
                self.rebuild()
                return applied
            if not batch.more:
                return applied

    def _catch_up_batch(self) -> BatchResult:
        """Apply one batch of the log."""
        with self._apply_lock:
            with transaction(self.sessions) as session:
                tail = repo.changes_after(session, self._last_change, CHANGE_BATCH)
                late = repo.changes_with_ids(session, list(self._gaps))
                fresh = late + tail
                if not fresh:
                    self._expire_gaps()
                    return BatchResult(0, False, False)
                rebuild_needed = False
                if any(c.op == ChangeOp.GENERATION for c in fresh):
                    state = repo.index_state(session, self.model_name, self.model_version)
                    rebuild_needed = state.generation != self.generation
                adds = [_face(c) for c in fresh if c.op == ChangeOp.ADD]
                ids, vectors = repo.embeddings_for(session, self.generation, adds, self.dimension)
            removes = [_face(c) for c in fresh if c.op == ChangeOp.REMOVE]
            self._apply(ids, vectors, removes)
            self._advance([c.id for c in fresh])
            self._changes_since_save += len(fresh)
        return BatchResult(len(fresh), len(tail) == CHANGE_BATCH, rebuild_needed)

    def _apply(
        self, ids: NDArray[np.int64], vectors: NDArray[np.float32], removes: list[int]
    ) -> None:
        if len(ids):
            new = np.array([not self._index.contains(int(i)) for i in ids], dtype=bool)
            if new.any():
                self._index.add(ids[new], vectors[new])
        if removes:
            self._index.remove(np.asarray(removes, dtype=np.int64))

    def _advance(self, seen_ids: list[int]) -> None:
        now = time.monotonic()
        for change_id in seen_ids:
            self._gaps.pop(change_id, None)
        top = max(seen_ids)
        seen = set(seen_ids)
        for missing in range(self._last_change + 1, top):
            if missing not in seen:
                self._gaps.setdefault(missing, now)
        self._last_change = max(self._last_change, top)
        self._expire_gaps()

    def _expire_gaps(self) -> None:
        cutoff = time.monotonic() - GAP_PATIENCE_S
        self._gaps = {g: t for g, t in self._gaps.items() if t > cutoff}

    # --- search and snapshots ----------------------------------------------------------
    def search(
        self, queries: NDArray[np.float32], k: int
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        return self._lane.search(queries, k)

    def apply_committed(self) -> None:
        """Bring the index up to date after this process committed a write."""
        self.catch_up()

    def save(self) -> None:
        """Write the snapshot and its manifest (atomically, manifest last).

        Only the in-memory copy is made under the apply lock; the disk write is not.
        """
        with self._save_lock:
            with self._apply_lock:
                image = self._index.serialize()
                manifest: dict[str, Any] = {
                    "model_name": self.model_name,
                    "model_version": self.model_version,
                    "dimension": self.dimension,
                    "generation": self.generation,
                    "count": self._index.count,
                    "kind": self._index.kind,
                    "last_change": self._last_change,
                    "gaps": sorted(self._gaps),
                }
                self._changes_since_save = 0
            folder = self.settings.index_dir
            folder.mkdir(parents=True, exist_ok=True)
            _write_atomically(folder / SNAPSHOT_FILE, image.tobytes())
            _write_atomically(folder / MANIFEST_FILE, json.dumps(manifest, indent=2).encode())

    def save_if_dirty(self, min_changes: int = 1) -> None:
        if self._changes_since_save >= min_changes:
            self.save()

    def _empty(self) -> FaissIndex:
        return FaissIndex.build(
            self.dimension,
            np.zeros(0, np.int64),
            np.zeros((0, self.dimension), np.float32),
            device="cpu",
        )


def _face(change: Change) -> int:
    if change.face_id is None:
        raise ValueError(f"change {change.id} ({change.op}) names no face")
    return int(change.face_id)


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)

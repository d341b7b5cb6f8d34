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

``SharedIndexSync`` (``shared_index_sync.py``) is the same loop for a Milvus collection
that every process shares: there the mark lives in the database, not in each process.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.orm import Session, sessionmaker

from facedb.config import Settings
from facedb.domain import ChangeOp
from facedb.errors import IndexUnavailable
from facedb.index.base import VectorIndex
from facedb.index.faiss_index import FaissIndex
from facedb.index.lane import SearchLane
from facedb.pipeline.recipes import CURRENT
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


@dataclass
class ChangeCursor:
    """How far the change log has been applied to an index: the highest change id applied,
    and the ids below it not yet visible (gaps) with the wall-clock time each was first
    missed. A gap is re-read until it appears or is ``GAP_PATIENCE_S`` old."""

    last_change: int = 0
    gaps: dict[int, float] = field(default_factory=dict)

    def advance(self, seen_ids: list[int]) -> None:
        """Record the change ids just applied; ids skipped below the highest become gaps."""
        now = time.time()
        for change_id in seen_ids:
            self.gaps.pop(change_id, None)
        top = max(seen_ids)
        seen = set(seen_ids)
        for missing in range(self.last_change + 1, top):
            if missing not in seen:
                self.gaps.setdefault(missing, now)
        self.last_change = max(self.last_change, top)
        self.expire_gaps()

    def expire_gaps(self) -> None:
        cutoff = time.time() - GAP_PATIENCE_S
        self.gaps = {g: t for g, t in self.gaps.items() if t > cutoff}

    def add_gaps(self, change_ids: list[int]) -> None:
        now = time.time()
        for change_id in change_ids:
            self.gaps.setdefault(change_id, now)


class IndexSync:
    """This process's FAISS index, the last change applied, and the logic that keeps them
    current. Subclasses keep another kind of index current with the same loop."""

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
        self._index: VectorIndex = self._empty()
        self._cursor = ChangeCursor()
        self._apply_lock = threading.Lock()
        self._save_lock = threading.Lock()
        self._changes_since_save = 0
        # Concurrent searches share index calls (and a GPU index gets its single lane).
        self._lane = SearchLane(lambda queries, k: self._index.search(queries, k))

    @property
    def index(self) -> VectorIndex:
        return self._index

    @property
    def count(self) -> int:
        return self._index.count

    @property
    def last_change(self) -> int:
        return self._cursor.last_change

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
            self.last_change,
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
        self._cursor = ChangeCursor(int(manifest["last_change"]))
        self._cursor.add_gaps([int(g) for g in manifest.get("gaps", [])])
        return True

    # --- rebuilds ------------------------------------------------------------------------
    def read_database(
        self,
        generation: int,
        sink: Callable[[NDArray[np.int64], NDArray[np.float32]], None],
        progress: Callable[[int], None] | None = None,
    ) -> tuple[int, list[int]]:
        """Hand every embedding of ``generation`` to ``sink`` in chunks; return the change
        id they cover and the ids below it not yet visible (transactions still in flight).

        The change id is read before the embeddings, so replaying from it can only repeat
        (idempotently) what the index already holds.
        """
        with transaction(self.sessions) as session:
            covered = repo.last_change_id(session)
            low = max(0, covered - GAP_WINDOW)
            seen = set(repo.change_ids_between(session, low, covered))
            unseen = [i for i in range(low + 1, covered) if i not in seen]
            for ids, vectors in repo.iter_embeddings(session, generation, self.dimension):
                sink(ids, vectors)
                if progress:
                    progress(len(ids))
        return covered, unseen

    def rebuild(self, progress: Callable[[int], None] | None = None) -> None:
        """Rebuild from the database beside the serving index, then swap it in."""
        generation, version = self._active_generation()
        chunks: list[tuple[NDArray[np.int64], NDArray[np.float32]]] = []
        covered, unseen = self.read_database(
            generation, lambda ids, vectors: chunks.append((ids, vectors)), progress
        )
        index = FaissIndex.build(
            self.dimension,
            np.concatenate([c[0] for c in chunks]) if chunks else np.zeros(0, np.int64),
            np.concatenate([c[1] for c in chunks])
            if chunks
            else np.zeros((0, self.dimension), np.float32),
            kind=self.settings.index_kind,
            nlist=self.settings.index_ivf_nlist,
            nprobe=self.settings.index_ivf_nprobe,
            device=self.settings.index_device,
        )
        with self._apply_lock:
            self._index = index
            self.generation = generation
            self._adopt(version)
            # Replaying from before the build re-applies what it may have missed.
            last = self._cursor.last_change
            self._cursor.last_change = min(covered, last) if last else covered
            self._cursor.add_gaps(unseen)
        self.catch_up()
        self.save()

    def _active_generation(self) -> tuple[int, str]:
        with transaction(self.sessions) as session:
            state = repo.index_state(session, self.model_name, self.model_version)
            return state.generation, state.model_version

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
                self._switch_generation()
                return applied
            if not batch.more:
                return applied

    def _catch_up_batch(self) -> BatchResult:
        """Apply one batch of the log, and move the mark, in one database transaction."""
        with self._apply_lock, transaction(self.sessions) as session:
            cursor = self._claim(session)
            if cursor is None:
                return BatchResult(0, False, True)
            tail = repo.changes_after(session, cursor.last_change, CHANGE_BATCH)
            fresh = repo.changes_with_ids(session, list(cursor.gaps)) + tail
            if not fresh:
                cursor.expire_gaps()
                self._record(session, cursor)
                return BatchResult(0, False, False)
            rebuild_needed = False
            if any(c.op == ChangeOp.GENERATION for c in fresh):
                state = repo.index_state(session, self.model_name, self.model_version)
                rebuild_needed = state.generation != self.generation
            adds = [_face(c) for c in fresh if c.op == ChangeOp.ADD]
            ids, vectors = repo.embeddings_for(session, self.generation, adds, self.dimension)
            removes = [_face(c) for c in fresh if c.op == ChangeOp.REMOVE]
            if len(ids):
                self._index.add(ids, vectors)
            if removes:
                self._index.remove(np.asarray(removes, dtype=np.int64))
            cursor.advance([c.id for c in fresh])
            self._record(session, cursor)
            self._changes_since_save += len(fresh)
        return BatchResult(len(fresh), len(tail) == CHANGE_BATCH, rebuild_needed)

    def _switch_generation(self) -> None:
        self.rebuild()

    def _claim(self, session: Session) -> ChangeCursor | None:
        """Return the cursor of the index changes are applied to (None: rebuild first)."""
        return self._cursor

    def _record(self, session: Session, cursor: ChangeCursor) -> None:
        """Keep the cursor moved by a batch (in memory here; the snapshot saves it)."""
        self._cursor = cursor

    # --- search and snapshots ----------------------------------------------------------
    def search(
        self, queries: NDArray[np.float32], k: int
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        return self._lane.search(queries, k)

    def health(self) -> dict[str, object]:
        """What ``/v1/health`` reports of the index (``available`` false, with the error,
        when the backend cannot be reached)."""
        try:
            faces = self.count
        except IndexUnavailable as exc:
            return {"available": False, "error": str(exc), **self._index.describe()}
        return {
            "available": True,
            "faces": faces,
            "generation": self.generation,
            **self._index.describe(),
            "last_change": self.last_change,
            "model_version": self.model_version,
            # Stored embeddings made by an older recipe: `facedb reindex --re-embed`.
            "re_embed_required": self.model_version != CURRENT.version,
        }

    def apply_committed(self) -> None:
        """Bring the index up to date after this process committed a write."""
        self.catch_up()

    def save(self) -> None:
        """Write the snapshot and its manifest (atomically, manifest last).

        Only the in-memory copy is made under the apply lock; the disk write is not.
        """
        with self._save_lock:
            with self._apply_lock:
                assert isinstance(self._index, FaissIndex)
                image = self._index.serialize()
                manifest: dict[str, Any] = {
                    "model_name": self.model_name,
                    "model_version": self.model_version,
                    "dimension": self.dimension,
                    "generation": self.generation,
                    "count": self._index.count,
                    "kind": self._index.kind,
                    "last_change": self._cursor.last_change,
                    "gaps": sorted(self._cursor.gaps),
                }
                self._changes_since_save = 0
            folder = self.settings.index_dir
            folder.mkdir(parents=True, exist_ok=True)
            _write_atomically(folder / SNAPSHOT_FILE, image.tobytes())
            _write_atomically(folder / MANIFEST_FILE, json.dumps(manifest, indent=2).encode())

    def save_if_dirty(self, min_changes: int = 1) -> None:
        if self._changes_since_save >= min_changes:
            self.save()

    def close(self) -> None:
        """Save the snapshot (a process that dies instead rebuilds or replays on start)."""
        self.save()

    def _empty(self) -> VectorIndex:
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

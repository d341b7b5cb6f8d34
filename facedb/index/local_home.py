"""A FAISS index in this process's memory, its mark saved with a snapshot on disk.

Each process keeps its own copy and applies every change of the log itself. On start it
loads ``<data_dir>/index/faces.faiss`` when ``manifest.json`` beside it names the
database's model version, dimension and generation (and no change the database lacks),
then replays the changes after the snapshot's mark; a snapshot of another generation, or a
corrupt one, is discarded with a log line and rebuilt. Snapshots are written atomically,
manifest last, without holding up searches.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from facedb.config import Settings
from facedb.errors import DataKeyError
from facedb.index.base import VectorIndex
from facedb.index.cursor import ChangeCursor
from facedb.index.faiss_index import FaissIndex
from facedb.index.follower import Coverage, Look, Serving, Sink
from facedb.pipeline.recipes import RecipeBook
from facedb.store.changes import GenerationState
from facedb.store.seal import Keyring, is_sealed, read_keyring
from facedb.store.unit import Unit

log = logging.getLogger(__name__)
SNAPSHOT_FILE = "faces.faiss"
MANIFEST_FILE = "manifest.json"


class LocalHome:
    def __init__(
        self,
        settings: Settings,
        model_name: str,
        keyring: Keyring | None,
        recipes: RecipeBook,
    ) -> None:
        self.settings = settings
        self.recipes = recipes
        self.model_name = model_name
        self.keyring = keyring  # the snapshot is sealed like the rows it holds
        self._save_lock = threading.Lock()

    @property
    def folder(self) -> Path:
        return self.settings.index_dir

    def resume(self, active: GenerationState, last_change: int) -> Serving | None:
        manifest_path, snapshot = self.folder / MANIFEST_FILE, self.folder / SNAPSHOT_FILE
        if not manifest_path.is_file() or not snapshot.is_file():
            return None
        try:
            manifest = json.loads(manifest_path.read_text())
            dimension = self.recipes.of(active.model_version).dimension
            expected = {
                "model_version": active.model_version,
                "dimension": dimension,
                "generation": active.generation,
            }
            mismatched = {k: manifest.get(k) for k, v in expected.items() if manifest.get(k) != v}
            if mismatched:
                log.warning("index snapshot discarded, it was built for %s", mismatched)
                return None
            if manifest["last_change"] > last_change:
                log.warning("index snapshot is newer than the database (restored backup?)")
                return None
            image = snapshot.read_bytes()
            if is_sealed(image):
                if self.keyring is None:
                    log.warning("index snapshot is sealed and no data key is set; rebuilding")
                    return None
                image = self.keyring.open(image, SNAPSHOT_FILE)
            index = FaissIndex.from_image(
                image, self.settings.index_ivf_nprobe, self.settings.index_device
            )
            if index.count != manifest["count"] or index.dimension != dimension:
                log.warning("index snapshot discarded: it does not match its manifest")
                return None
        except (OSError, ValueError, KeyError, RuntimeError, DataKeyError) as exc:
            log.warning("index snapshot discarded as corrupt or unreadable (%s); rebuilding", exc)
            return None
        cursor = ChangeCursor(int(manifest["last_change"]))
        cursor.add_gaps([int(g) for g in manifest.get("gaps", [])])
        return Serving(index, active.generation, active.model_version, cursor)

    def build(
        self, generation: int, dimension: int, fill: Callable[[Sink], Coverage]
    ) -> tuple[VectorIndex, Coverage]:
        chunks: list[tuple[Any, Any]] = []
        coverage = fill(lambda ids, vectors: chunks.append((ids, vectors)))
        ids = np.concatenate([c[0] for c in chunks]) if chunks else np.zeros(0, np.int64)
        vectors = (
            np.concatenate([c[1] for c in chunks])
            if chunks
            else np.zeros((0, dimension), np.float32)
        )
        s = self.settings
        index = FaissIndex.build(
            dimension,
            ids,
            vectors,
            kind=s.index_kind,
            nlist=s.index_ivf_nlist,
            nprobe=s.index_ivf_nprobe,
            device=s.index_device,
        )
        return index, coverage

    def install(self, unit: Unit, built: Serving, previous: Serving, coverage: Coverage) -> Serving:
        # Replaying from before the build re-applies what it may have missed.
        last = previous.cursor.last_change
        cursor = ChangeCursor(
            min(coverage.covered, last) if last else coverage.covered, dict(previous.cursor.gaps)
        )
        cursor.add_gaps(coverage.unseen)
        return Serving(built.index, built.generation, built.model_version, cursor)

    def retire(self, previous: Serving, current: Serving) -> None:
        """Nothing to do: the old index is garbage once no search holds it."""

    def look(self, unit: Unit, serving: Serving) -> tuple[Look, ChangeCursor | None]:
        return Look.APPLY, None  # this process's own mark: reading the log is the look

    def claim(self, unit: Unit, serving: Serving) -> Serving | None:
        return serving

    def record(self, unit: Unit, cursor: ChangeCursor) -> None:
        """Nothing here: the follower keeps the mark, and a snapshot saves it."""

    def count(self, serving: Serving) -> int:
        return serving.index.count

    def save(self, serving: Serving) -> None:
        """Write the snapshot and its manifest (atomically, manifest last)."""
        index = serving.index
        assert isinstance(index, FaissIndex)
        with self._save_lock:
            image, count = index.snapshot()
            if self.keyring is not None:
                image = self.keyring.seal(image, SNAPSHOT_FILE)
            manifest: dict[str, Any] = {
                "model_name": self.model_name,
                "model_version": serving.model_version,
                "dimension": index.dimension,
                "generation": serving.generation,
                "count": count,
                "kind": index.kind,
                "last_change": serving.cursor.last_change,
                "gaps": sorted(serving.cursor.gaps),
            }
            self.folder.mkdir(parents=True, exist_ok=True)
            _write_atomically(self.folder / SNAPSHOT_FILE, image)
            _write_atomically(self.folder / MANIFEST_FILE, json.dumps(manifest, indent=2).encode())

    def check(self, serving: Serving) -> None:
        """In this process's memory: always ready."""

    def close(self) -> None:
        """Nothing to release."""


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def reseal_snapshot(settings: Settings) -> str | None:
    """Seal the index snapshot under the current data key (in place, atomically); return
    what was done, or None when there is no snapshot."""
    path = settings.index_dir / SNAPSHOT_FILE
    keyring = read_keyring(settings)
    if keyring is None or not path.is_file():
        return None
    image = path.read_bytes()
    if is_sealed(image):
        image = keyring.open(image, SNAPSHOT_FILE)
    _write_atomically(path, keyring.seal(image, SNAPSHOT_FILE))
    return "re-sealed"

"""FAISS index: exact inner product by default, IVF for large collections, GPU when present.

Concurrency and device design:
- A CPU index (IndexIDMap2 over Flat or IVF) is the master copy: it supports remove_ids
  and can be written to disk.
- On a GPU, a replica serves searches. GPU indexes cannot remove ids, so removals there are
  tombstones filtered at search time; the replica is re-cloned from the master when
  tombstones pile up. GPU indexes are not thread-safe even for search, so the replica has a
  single lane (a lock).
- A readers-writer lock lets CPU searches run concurrently while adds and removes wait.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import faiss
import numpy as np
from numpy.typing import NDArray

from facedb.domain import IndexKind
from facedb.index.base import as_ids, as_vectors, empty_results, padded

log = logging.getLogger(__name__)

_MIN_TRAIN_PER_LIST = 39  # faiss warns below this many training points per list


def gpu_count() -> int:
    """Return how many GPUs this faiss build can use (0 for faiss-cpu)."""
    get = getattr(faiss, "get_num_gpus", None)
    return int(get()) if get is not None else 0


class _RWLock:
    """Many readers or one writer; writers are not starved by a stream of readers."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._waiting_writers = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._waiting_writers:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._waiting_writers += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._waiting_writers -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


class FaissIndex:
    """Cosine top-k search over faiss. Build with ``FaissIndex.build`` or ``FaissIndex.load``."""

    def __init__(self, master: Any, dimension: int, device: str, nprobe: int = 32) -> None:
        self.dimension = dimension
        self._master = master
        self._lock = _RWLock()
        self._ids: set[int] = set(int(i) for i in faiss.vector_to_array(master.id_map))
        self._nprobe = nprobe
        self._set_nprobe(master)
        self._gpu_lane = threading.Lock()
        self._gpu: Any = None
        self._tombstones: set[int] = set()
        self._gpu_resources: Any = None
        if device == "gpu":
            self._gpu_resources = faiss.StandardGpuResources()
            self._gpu = self._clone_to_gpu()
        self.device = device

    # --- construction ---------------------------------------------------------------
    @classmethod
    def build(
        cls,
        dimension: int,
        ids: NDArray[np.int64],
        vectors: NDArray[np.float32],
        kind: IndexKind = IndexKind.FP16,
        nlist: int = 1024,
        nprobe: int = 32,
        device: Literal["auto", "cpu", "gpu"] = "auto",
    ) -> FaissIndex:
        """Return an index holding ``vectors`` under ``ids``.

        ``fp16`` keeps half-precision copies (a unit vector to about 3 decimal digits, far
        below the gap between a mate and a stranger) and scans them exactly at twice the speed
        of ``flat``. IVF needs training data: with fewer than 39 vectors per list the list
        count shrinks, and below 2 lists it falls back to exact search (logged).
        """
        vectors = as_vectors(vectors, dimension)
        ids = as_ids(ids)
        inner: Any
        if kind == IndexKind.IVF:
            lists = min(nlist, len(vectors) // _MIN_TRAIN_PER_LIST)
            if lists >= 2:
                quantizer = faiss.IndexFlatIP(dimension)
                inner = faiss.IndexIVFFlat(quantizer, dimension, lists, faiss.METRIC_INNER_PRODUCT)
                inner.train(vectors)
            else:
                log.info("IVF needs more vectors (have %d); using exact search", len(vectors))
                inner = faiss.IndexFlatIP(dimension)
        elif kind == IndexKind.FP16:
            inner = faiss.IndexScalarQuantizer(
                dimension, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT
            )
        else:
            inner = faiss.IndexFlatIP(dimension)
        master = faiss.IndexIDMap2(inner)
        if len(ids):
            master.add_with_ids(vectors, ids)
        chosen = device
        if device == "auto":
            chosen = "gpu" if gpu_count() > 0 else "cpu"
        return cls(master, dimension, chosen, nprobe)

    @classmethod
    def load(
        cls, path: Path, nprobe: int = 32, device: Literal["auto", "cpu", "gpu"] = "auto"
    ) -> FaissIndex:
        """Return the index written by ``save`` (raises on a corrupt file)."""
        return cls.from_image(path.read_bytes(), nprobe, device)

    @classmethod
    def from_image(
        cls, image: bytes, nprobe: int = 32, device: Literal["auto", "cpu", "gpu"] = "auto"
    ) -> FaissIndex:
        """Return the index ``snapshot`` serialised (raises on corrupt bytes)."""
        master = faiss.deserialize_index(np.frombuffer(image, dtype=np.uint8))
        if not isinstance(master, faiss.IndexIDMap2):
            master = faiss.downcast_index(master)
        chosen = "gpu" if device == "gpu" or (device == "auto" and gpu_count() > 0) else "cpu"
        return cls(master, master.d, chosen, nprobe)

    # --- queries and updates----------------------------------------------------------------
    @property
    def count(self) -> int:
        return len(self._ids)

    @property
    def kind(self) -> IndexKind:
        inner = faiss.downcast_index(self._master.index)
        if isinstance(inner, faiss.IndexIVF):
            return IndexKind.IVF
        if isinstance(inner, faiss.IndexScalarQuantizer):
            return IndexKind.FP16
        return IndexKind.FLAT

    @property
    def exact_scores(self) -> bool:
        return self.kind != IndexKind.FP16

    def describe(self) -> dict[str, object]:
        return {"backend": "faiss", "kind": self.kind, "device": self.device}

    def contains(self, face_id: int) -> bool:
        return face_id in self._ids

    def ids(self) -> NDArray[np.int64]:
        with self._lock.read():
            return np.fromiter(self._ids, dtype=np.int64, count=len(self._ids))

    def add(self, ids: NDArray[np.int64], vectors: NDArray[np.float32]) -> None:
        """Add vectors; an id already present is replaced."""
        ids = as_ids(ids)
        vectors = as_vectors(vectors, self.dimension)
        if not len(ids):
            return
        with self._lock.write():
            present = np.array([i for i in ids.tolist() if i in self._ids], dtype=np.int64)
            if len(present):
                self._remove_locked(present)
            self._master.add_with_ids(vectors, ids)
            if self._gpu is not None:
                with self._gpu_lane:
                    self._gpu.add_with_ids(vectors, ids)
                    self._tombstones.difference_update(ids.tolist())
            self._ids.update(ids.tolist())

    def remove(self, ids: NDArray[np.int64]) -> None:
        """Remove ids; unknown ids are ignored."""
        ids = as_ids(ids)
        with self._lock.write():
            self._remove_locked(ids)

    def _remove_locked(self, ids: NDArray[np.int64]) -> None:
        known = [i for i in ids.tolist() if i in self._ids]
        if not known:
            return
        self._master.remove_ids(np.asarray(known, dtype=np.int64))
        self._ids.difference_update(known)
        if self._gpu is not None:
            with self._gpu_lane:
                self._tombstones.update(known)
                if len(self._tombstones) > max(1000, len(self._ids) // 10):
                    self._gpu = self._clone_to_gpu()
                    self._tombstones.clear()

    def search(
        self, queries: NDArray[np.float32], k: int
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Return (scores, ids), each (m, k), best first; -1 ids pad missing results."""
        queries = as_vectors(queries, self.dimension)
        k = max(1, int(k))
        with self._lock.read():
            if not self._ids:
                return empty_results(len(queries), k)
            if self._gpu is None:
                scores, ids = self._master.search(queries, min(k, len(self._ids)))
            else:
                with self._gpu_lane:
                    extra = len(self._tombstones)
                    scores, ids = self._gpu.search(queries, min(k + extra, 2048))
                    if extra:
                        scores, ids = _drop(scores, ids, self._tombstones)
        return padded(scores, ids, k)

    def snapshot(self) -> tuple[bytes, int]:
        """Return the CPU master as bytes (``load`` reads them back from a file) and how
        many vectors those bytes hold, taken together."""
        with self._lock.read():
            image = faiss.serialize_index(self._master)
            return np.asarray(image, dtype=np.uint8).tobytes(), len(self._ids)

    def save(self, path: Path) -> None:
        """Write the CPU master to ``path`` atomically."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_bytes(self.snapshot()[0])
        tmp.replace(path)

    # --- helpers ---------------------------------------------------------------------------
    def _set_nprobe(self, index: Any) -> None:
        inner = faiss.downcast_index(index.index) if hasattr(index, "index") else index
        if isinstance(inner, faiss.IndexIVF):
            inner.nprobe = self._nprobe

    def _clone_to_gpu(self) -> Any:
        return faiss.index_cpu_to_gpu(self._gpu_resources, 0, self._master)


def _drop(
    scores: NDArray[np.float32], ids: NDArray[np.int64], dead: set[int]
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    mask = np.isin(ids, np.fromiter(dead, dtype=np.int64, count=len(dead)))
    kept_scores, kept_ids = empty_results(len(ids), ids.shape[1])
    for row in range(len(ids)):
        keep = ~mask[row]
        n = int(keep.sum())
        kept_scores[row, :n] = scores[row, keep]
        kept_ids[row, :n] = ids[row, keep]
    return kept_scores, kept_ids

"""What the service needs of a vector index, whichever backend holds the vectors."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray


class VectorIndex(Protocol):
    """Cosine top-k search over unit vectors stored under int64 face ids."""

    dimension: int

    @property
    def count(self) -> int:
        """How many vectors the index holds."""
        ...

    @property
    def exact_scores(self) -> bool:
        """Whether the scores it returns are the float32 inner products (else callers
        re-score the top of the list from the stored embeddings)."""
        ...

    def describe(self) -> dict[str, object]:
        """What the health endpoint reports of the index (backend, kind, device)."""
        ...

    def ids(self) -> NDArray[np.int64]:
        """Every id the index holds."""
        ...

    def add(self, ids: NDArray[np.int64], vectors: NDArray[np.float32]) -> None:
        """Add vectors; an id already present is replaced."""
        ...

    def remove(self, ids: NDArray[np.int64]) -> None:
        """Remove ids; unknown ids are ignored."""
        ...

    def search(
        self, queries: NDArray[np.float32], k: int
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Return (scores, ids), each (m, k), best first; -1 ids pad missing results."""
        ...


def as_vectors(vectors: NDArray[Any], dimension: int) -> NDArray[np.float32]:
    array = np.ascontiguousarray(vectors, dtype=np.float32)
    if array.ndim == 1:
        array = array.reshape(1, -1)
    if array.ndim != 2 or (array.size and array.shape[1] != dimension):
        raise ValueError(f"vectors must be (n, {dimension}) float32, got {array.shape}")
    return array.reshape(-1, dimension)


def as_ids(ids: NDArray[Any]) -> NDArray[np.int64]:
    return np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)


def empty_results(m: int, k: int) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    return np.full((m, k), -np.inf, dtype=np.float32), np.full((m, k), -1, dtype=np.int64)


def padded(
    scores: NDArray[np.float32], ids: NDArray[np.int64], k: int
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    out_scores, out_ids = empty_results(len(ids), k)
    width = min(k, ids.shape[1])
    out_scores[:, :width] = scores[:, :width]
    out_ids[:, :width] = ids[:, :width]
    out_scores[out_ids < 0] = -np.inf
    return out_scores, out_ids

"""The index interface the service layer depends on."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import NDArray


class VectorIndex(Protocol):
    """Cosine (inner product on unit vectors) top-k search over integer ids.

    Vectors are contiguous float32 (n, d), L2-normalised; ids are int64 (n,). In search
    results an id of -1 means "no result" (faiss convention) and its score is -inf.
    """

    dimension: int

    def add(self, ids: NDArray[np.int64], vectors: NDArray[np.float32]) -> None: ...

    def remove(self, ids: NDArray[np.int64]) -> None: ...

    def search(
        self, queries: NDArray[np.float32], k: int
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]: ...

    def contains(self, face_id: int) -> bool: ...

    def ids(self) -> NDArray[np.int64]: ...

    @property
    def count(self) -> int: ...

    def save(self, path: Path) -> None: ...

"""Vector arithmetic of embeddings: a network's views averaged, a recipe's parts fused, and
an embedding split back into its parts.

A recipe's embedding is its parts' unit vectors, each scaled by the square root of its
weight, side by side (weights summing to 1 make it a unit vector, and the cosine of two
such embeddings is the weighted sum of the parts' cosines: score-level fusion).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

Vectors = NDArray[np.float32]


def average_views(raw: NDArray[np.float32], counts: list[int]) -> Vectors:
    """Return one unit vector per face from a network's raw outputs, one row per view:
    each view made unit length, face i's ``counts[i]`` consecutive views averaged."""
    raw = raw / np.maximum(np.linalg.norm(raw, axis=1, keepdims=True), 1e-12)
    vectors = np.add.reduceat(raw, np.cumsum([0, *counts[:-1]]), axis=0)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


def fuse(parts: list[tuple[Vectors, float]]) -> Vectors:
    """Return the parts' unit vectors scaled by sqrt(weight), side by side, renormalised."""
    joined = np.concatenate([v * np.float32(math.sqrt(w)) for v, w in parts], axis=1)
    norms = np.linalg.norm(joined, axis=1, keepdims=True)
    return np.ascontiguousarray(joined / np.maximum(norms, 1e-12), dtype=np.float32)


def join_parts(parts: list[Vectors], weights: Sequence[float]) -> Vectors:
    """Return a recipe's embeddings from its parts' unit vectors (the weighted join)."""
    if len(parts) == 1:
        return unit(parts[0])
    return fuse(list(zip(parts, weights, strict=True)))


def split_parts(stored: Vectors, part_dimensions: Sequence[int]) -> list[Vectors]:
    """Return each part's unit vectors from a recipe's embeddings (n, dimension)."""
    if len(part_dimensions) == 1:
        return [np.asarray(stored, np.float32)]
    ends = np.cumsum(part_dimensions)[:-1]
    return [unit(p) for p in np.split(np.asarray(stored, np.float32), ends, axis=1)]


def unit(x: NDArray[np.floating]) -> Vectors:
    """Return the rows made unit length (a zero row stays zero)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x / np.maximum(norms, 1e-12), dtype=np.float32)

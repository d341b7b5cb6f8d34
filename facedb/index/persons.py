"""Best persons, not best faces: the one widening loop every 1:N match goes through.

An index returns faces; a caseworker wants persons, each once with their best face. A
query's nearest faces may all be one person's, so faces are fetched in widening rounds
until each query has its k persons, met the score floor, or exhausted the index. The live
search (``FaceIndex.top_persons``) and the batch cross-match (over a register's own flat
index) both call ``top_persons`` here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import numpy as np
from numpy.typing import NDArray


class Owned(Protocol):
    """What a lookup says of a face: at least whose it is."""

    @property
    def person_id(self) -> str: ...


OwnerT = TypeVar("OwnerT", bound=Owned)
Lookup = Callable[[Sequence[int]], Mapping[int, OwnerT]]
Search = Callable[[NDArray[np.float32], int], tuple[NDArray[np.float32], NDArray[np.int64]]]


@dataclass(frozen=True)
class PersonHit(Generic[OwnerT]):
    """A person found for one query vector: their best face, its score, and their place
    among that query's persons (1 = best)."""

    face_id: int
    owner: OwnerT
    score: float
    rank: int


def top_persons(
    search: Search,
    count: Callable[[], int],
    vectors: NDArray[np.float32],
    k: int,
    lookup: Lookup[OwnerT],
    admit: Callable[[int, OwnerT], bool] | None = None,
    floor: float | None = None,
) -> list[list[PersonHit[OwnerT]]]:
    """Return, for each query vector (m, d), up to k persons best first, each once with
    their best face.

    ``search(queries, n)`` gives each query's n best faces (scores, ids; -1 pads), best
    first; ``count()`` how many faces it holds. ``lookup(face_ids)`` says whose each face is
    (faces it does not know, deleted since, are skipped); ``admit(row, owner)`` keeps a face
    for query ``row``. A query's list ends at the first score under ``floor``.
    """
    vectors = np.atleast_2d(vectors)
    results: list[list[PersonHit[OwnerT]]] = [[] for _ in range(len(vectors))]
    rows = list(range(len(vectors)))
    fetch = min(max(count(), 1), max(8 * k, 64))
    while rows:
        scores, ids = search(vectors[rows], fetch)
        total = count()  # read after the search, which may have followed a rebuild
        owners = lookup(sorted({int(i) for i in ids.ravel() if i >= 0}))
        still_open = []
        for row, row_scores, row_ids in zip(rows, scores, ids, strict=True):
            hits, closed = _walk(row, row_scores, row_ids, owners, k, admit, floor)
            if closed or fetch >= total:
                results[row] = hits
            else:
                still_open.append(row)
        rows = still_open
        fetch = min(total, fetch * 4)
    return results


def top_persons_matrix(
    scores: NDArray[np.float32],
    positions: NDArray[np.int64],
    persons: NDArray[np.int64],
    k: int,
    floor: float | None,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.bool_]]:
    """``top_persons`` for a block of queries at once, in numpy: from each query's fetched
    faces (``scores`` and ``positions`` best first, -1 pads; ``persons[position]`` is whose
    a face is), keep each person's first (best) face and the first k persons at or above the
    floor. Return the kept entries' rows and columns, and which rows are still open (fewer
    than k persons while every fetched face passed the floor: more faces may hold more)."""
    m, n = scores.shape
    valid = positions >= 0
    if floor is not None:
        valid &= scores >= floor
    owner = persons[np.where(valid, positions, 0)]
    flat = np.flatnonzero(valid)
    keys = (flat // n) * (int(persons.max(initial=0)) + 1) + owner.ravel()[flat]
    _, first = np.unique(keys, return_index=True)
    chosen = np.sort(flat[first])  # row by row, best first
    rows, cols = chosen // n, chosen % n
    place = np.arange(len(rows)) - np.searchsorted(rows, rows, side="left")
    kept = place < k
    rows, cols = rows[kept], cols[kept]
    found = np.bincount(rows, minlength=m)
    still_open = (found < k) & valid.all(axis=1)
    return rows.astype(np.int64), cols.astype(np.int64), still_open


def _walk(
    row: int,
    scores: NDArray[np.float32],
    ids: NDArray[np.int64],
    owners: Mapping[int, OwnerT],
    k: int,
    admit: Callable[[int, OwnerT], bool] | None,
    floor: float | None,
) -> tuple[list[PersonHit[OwnerT]], bool]:
    """Return one query's persons from its fetched faces (best first), and whether the list
    is final (k persons, the floor met, or the index ran out)."""
    hits: dict[str, PersonHit[OwnerT]] = {}
    for score, face_id in zip(scores.tolist(), ids.tolist(), strict=True):
        if face_id < 0 or (floor is not None and score < floor):
            return list(hits.values()), True
        owner = owners.get(face_id)
        if owner is None or owner.person_id in hits or (admit and not admit(row, owner)):
            continue
        hits[owner.person_id] = PersonHit(face_id, owner, score, len(hits) + 1)
        if len(hits) == k:
            return list(hits.values()), True
    return list(hits.values()), False

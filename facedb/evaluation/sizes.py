"""Register sizes from one enrolment (``facedb eval --sizes``): how identification falls as
strangers join the register, and a line through it towards a national register's size.

Every distractor is enrolled once. For each mated search the evaluation keeps who scored
above the mate; the register of size N holds the persons to be found and the first N
distractors of one fixed shuffle (so each size is a subset of the next), and a search's
rank there is 1 + those above the mate within it. The curve is fitted as a straight line in
log10(persons in the register) through the measured sizes, the way identification miss
rates are known to grow with a gallery's size; beyond the largest size measured the line is
an extrapolation, and the report says so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from facedb.evaluation import metrics

SIZE_RANKS = (1, 10, 20, 50)
EXTRAPOLATE_TO = 100_000  # persons


@dataclass(frozen=True)
class Above:
    """One mated search: its rank among the gallery's own persons, and which distractors
    (their places in the shuffle) scored above its mate. Rank 0: its photo showed no face."""

    own_rank: int
    distractors: tuple[int, ...]

    def rank_within(self, size: int) -> int:
        if self.own_rank == 0:
            return 0
        return self.own_rank + sum(1 for d in self.distractors if d < size)


def shuffled(names: Sequence[str], seed: int) -> dict[str, int]:
    """Each distractor's place in one fixed shuffle of them."""
    order = np.random.default_rng(seed).permutation(len(names))
    return {names[int(i)]: place for place, i in enumerate(order)}


def by_size(
    searches: list[Above],
    sizes: Sequence[int],
    own_persons: int,
    rate: Callable[[Callable[[NDArray[np.int64]], float], int], dict[str, float | None]],
) -> dict[str, Any]:
    """Rank-k with intervals at every size, and the fitted line with its extrapolation."""
    rows = []
    for size in sizes:
        ranks = np.asarray([s.rank_within(size) for s in searches], dtype=np.int64)
        row: dict[str, Any] = {"distractors": size, "persons": own_persons + size}
        for k in SIZE_RANKS:
            row[f"rank{k}"] = rate(_rank_rate(ranks, k), len(ranks))
        rows.append(row)
    return {"sizes": rows, "fit": fitted(rows)}


def _rank_rate(ranks: NDArray[np.int64], k: int) -> Callable[[NDArray[np.int64]], float]:
    return lambda idx: metrics.rank_rate(ranks[idx], k)


def fitted(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """rank-k ≈ a + b * log10(persons), by least squares over the sizes measured."""
    persons = np.asarray([r["persons"] for r in rows], dtype=np.float64)
    out: dict[str, Any] = {
        "model": "rank-k = a + b * log10(persons), least squares over the sizes measured",
        "measured_up_to": int(persons.max()) if len(persons) else 0,
        "extrapolated_to": EXTRAPOLATE_TO,
        "trust": "within the sizes measured, a summary; beyond them a straight-line guess "
        "that the largest measured size supports less the further it reaches",
    }
    if len(set(persons.tolist())) < 2:
        out["lines"] = None
        return out
    x = np.log10(persons)
    lines = {}
    for k in SIZE_RANKS:
        y = np.asarray([r[f"rank{k}"]["value"] for r in rows], dtype=np.float64)
        b, a = np.polyfit(x, y, 1)
        at = float(np.clip(a + b * np.log10(EXTRAPOLATE_TO), 0.0, 1.0))
        lines[f"rank{k}"] = {"a": round(float(a), 4), "per_decade": round(float(b), 4),
                             f"at_{EXTRAPOLATE_TO}": round(at, 4)}  # fmt: skip
    out["lines"] = lines
    return out

"""Error versus discard (NIST FATE-Quality, ISO/IEC 29794-1): how far the false non-match
rate falls when the lowest-quality share of mated comparisons is set aside, the threshold
held where it gives the chosen false-match rate over all non-mated comparisons.

A comparison's quality is the lower of its two faces' (a match needs both). Ties in
quality are broken at random (``seed``), so a measure that says little about most faces
is not credited for the order the comparisons happened to come in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FRACTIONS = (0.05, 0.10, 0.20)
BOOT = 1000


def threshold_at(nonmated: NDArray[np.float64], fmr: float) -> float:
    """Return the score a share ``fmr`` of non-mated comparisons reaches or passes."""
    ordered = np.sort(nonmated)[::-1]
    k = max(1, round(fmr * len(ordered)))
    return float(ordered[k - 1])


def _order(quality: NDArray[np.float64], seed: int) -> NDArray[np.int64]:
    jitter = np.random.default_rng(seed).random(len(quality))
    return np.lexsort((jitter, quality))  # lowest quality first


@dataclass(frozen=True)
class Discard:
    """One measure's error-versus-discard figures on one set of mated comparisons."""

    fnmr: float  # all comparisons
    kept: dict[float, float]  # share set aside → FNMR of the rest
    lowest_ratio: float  # FNMR among the lowest 10% over FNMR of all (random: 1)
    ceiling: float  # the most that ratio can be: 1 / FNMR


def discard(
    missed: NDArray[np.bool_],
    quality: NDArray[np.float64],
    seed: int = 0,
    fractions: tuple[float, ...] = FRACTIONS,
) -> Discard:
    """Return the figures for mated comparisons (``missed``: below the threshold) and
    their qualities."""
    order = _order(quality, seed)
    ranked = missed[order].astype(np.float64)
    n = len(ranked)
    fnmr = float(ranked.mean()) if n else float("nan")
    kept = {f: float(ranked[round(f * n) :].mean()) for f in fractions}
    lowest = float(ranked[: max(1, round(0.10 * n))].mean())
    ratio = lowest / fnmr if fnmr > 0 else float("nan")
    return Discard(fnmr, kept, ratio, 1.0 / fnmr if fnmr > 0 else float("nan"))


def interval(values: NDArray[np.float64]) -> tuple[float, float]:
    """Return the central 95% of bootstrap values."""
    finite = values[np.isfinite(values)]
    if not len(finite):
        return (float("nan"), float("nan"))
    low, high = np.percentile(finite, [2.5, 97.5])
    return float(low), float(high)


def bootstrap(
    missed: NDArray[np.bool_],
    quality: NDArray[np.float64],
    groups: NDArray[np.int64],
    boot: int = BOOT,
    seed: int = 1,
) -> dict[str, tuple[float, float]]:
    """Return 95% intervals of the lowest-10% ratio and of each FNMR after discarding,
    resampling whole persons (``groups``: each comparison's person)."""
    rng = np.random.default_rng(seed)
    persons = np.unique(groups)
    rows = {p: np.flatnonzero(groups == p) for p in persons}
    ratios, kept = [], {f: [] for f in FRACTIONS}  # type: ignore[var-annotated]
    for b in range(boot):
        pick = np.concatenate([rows[p] for p in rng.choice(persons, len(persons))])
        d = discard(missed[pick], quality[pick], seed=b)
        ratios.append(d.lowest_ratio)
        for f in FRACTIONS:
            kept[f].append(d.kept[f])
    out = {"lowest_ratio": interval(np.asarray(ratios))}
    for f in FRACTIONS:
        out[f"kept_{f}"] = interval(np.asarray(kept[f]))
    return out

"""Biometric error rates from similarity scores (higher score = more alike).

Terms follow ISO/IEC 19795-1 and NIST FRTE 1:N:
- verification: FAR (false accept rate) over non-mated pairs, TAR (true accept rate) over
  mated pairs, at a threshold;
- open-set identification: FPIR (share of non-mated searches whose top candidate scores at
  or above the threshold) and FNIR (share of mated searches whose mate is not returned at
  rank 1 at or above the threshold).
A rate below one non-mated trial cannot be measured: such entries carry
``"measurable": false`` and the threshold is the strictest one the data supports.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class OperatingPoint:
    """A threshold and the rates it gives."""

    target: float
    threshold: float
    achieved: float  # FAR or FPIR actually reached on the data
    rate: float  # TAR or FNIR at that threshold
    measurable: bool

    def as_dict(self) -> dict[str, float | bool]:
        return {
            "threshold": round(self.threshold, 5),
            "achieved": round(self.achieved, 6),
            "value": round(self.rate, 6),
            "measurable": self.measurable,
        }


def threshold_for_rate(negatives: NDArray[np.float64], target: float) -> tuple[float, bool]:
    """Return the lowest threshold whose false-accept share of ``negatives`` is ≤ target.

    A score counts as accepted when ``score >= threshold``. Also returns whether the data
    can resolve the target (at least one negative per 1/target).
    """
    negatives = np.sort(np.asarray(negatives, dtype=np.float64))[::-1]
    n = len(negatives)
    if n == 0:
        return 1.0, False
    allowed = int(np.floor(target * n))  # negatives that may score at or above it
    measurable = n * target >= 1.0
    if allowed >= n:
        return float(negatives[-1]), measurable
    # Just above the (allowed+1)-th highest negative: that one and all below are rejected.
    return float(np.nextafter(negatives[allowed], np.inf)), measurable


def share_at_or_above(scores: NDArray[np.float64], threshold: float) -> float:
    scores = np.asarray(scores, dtype=np.float64)
    return float(np.mean(scores >= threshold)) if len(scores) else 0.0


def tar_at_far(
    mated: NDArray[np.float64], nonmated: NDArray[np.float64], far: float
) -> OperatingPoint:
    threshold, measurable = threshold_for_rate(nonmated, far)
    return OperatingPoint(
        target=far,
        threshold=threshold,
        achieved=share_at_or_above(nonmated, threshold),
        rate=share_at_or_above(mated, threshold),
        measurable=measurable,
    )


def fnir_at_fpir(
    mated_top_is_mate: NDArray[np.bool_],
    mated_mate_scores: NDArray[np.float64],
    nonmated_top_scores: NDArray[np.float64],
    fpir: float,
) -> OperatingPoint:
    """FNIR at the threshold giving ``fpir`` on the non-mated searches.

    ``mated_top_is_mate[i]``: the mate ranked first for mated search i; ``mated_mate_scores``:
    the mate's score in that search.
    """
    threshold, measurable = threshold_for_rate(nonmated_top_scores, fpir)
    hit = np.asarray(mated_top_is_mate, dtype=bool) & (
        np.asarray(mated_mate_scores, dtype=np.float64) >= threshold
    )
    return OperatingPoint(
        target=fpir,
        threshold=threshold,
        achieved=share_at_or_above(nonmated_top_scores, threshold),
        rate=float(1.0 - hit.mean()) if len(hit) else 1.0,
        measurable=measurable,
    )


def rank_rate(ranks: NDArray[np.int64], k: int) -> float:
    """Share of mated searches whose mate is at rank ≤ k (ranks start at 1; 0 = not found)."""
    ranks = np.asarray(ranks)
    return float(np.mean((ranks >= 1) & (ranks <= k))) if len(ranks) else 0.0


def det_curve(
    mated: NDArray[np.float64], nonmated: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return (FAR, FNMR) over every distinct threshold, for a DET plot."""
    thresholds = np.unique(np.concatenate([mated, nonmated]))
    far = np.array([share_at_or_above(nonmated, t) for t in thresholds])
    fnmr = np.array([1.0 - share_at_or_above(mated, t) for t in thresholds])
    return far, fnmr


def with_interval(
    rate: Callable[[NDArray[np.int64]], float], n: int, rounds: int, rng: np.random.Generator
) -> dict[str, float | None]:
    """Return ``rate`` over all n items and its bootstrap 95% interval.

    ``rate(indices)`` computes the rate over the items at ``indices`` (with repeats).
    """
    value = rate(np.arange(n)) if n else 0.0
    return {"value": round(value, 6), **interval_of(lambda i, _: rate(i), (n, 0), rounds, rng)}


def interval_of(
    rate: Callable[[NDArray[np.int64], NDArray[np.int64]], float],
    sizes: tuple[int, int],
    rounds: int,
    rng: np.random.Generator,
) -> dict[str, float | None]:
    """Return the bootstrap 95% interval of a rate over two independently resampled sets
    (None where there is nothing to resample)."""
    first, second = sizes
    if not first or rounds < 1:
        return {"low": None, "high": None}
    values = [
        rate(rng.integers(0, first, first), rng.integers(0, max(second, 1), second))
        for _ in range(rounds)
    ]
    low, high = np.percentile(values, [2.5, 97.5])
    return {"low": round(float(low), 6), "high": round(float(high), 6)}


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Return the Wilson score 95% interval of a proportion (sound at small counts)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))

"""Error-rate arithmetic on hand-made score sets."""

from __future__ import annotations

import numpy as np
import pytest

from facedb.evaluation.metrics import (
    fnir_at_fpir,
    rank_rate,
    share_at_or_above,
    tar_at_far,
    threshold_for_rate,
)


def test_threshold_rejects_all_but_the_allowed_negatives() -> None:
    negatives = np.linspace(0.0, 0.99, 100)  # 0.00, 0.01, ..., 0.99
    threshold, measurable = threshold_for_rate(negatives, 0.05)
    assert measurable
    assert share_at_or_above(negatives, threshold) == pytest.approx(0.05)
    assert 0.94 < threshold <= 0.95


def test_unresolvable_rate_is_flagged() -> None:
    threshold, measurable = threshold_for_rate(np.array([0.1, 0.2, 0.3]), 0.001)
    assert not measurable
    assert threshold > 0.3  # strictest the data supports: nothing accepted


def test_tar_at_far_separable() -> None:
    point = tar_at_far(np.array([0.8, 0.9, 0.7]), np.linspace(0, 0.5, 1000), far=0.01)
    assert point.rate == 1.0 and point.achieved <= 0.01 and point.measurable


def test_fnir_counts_wrong_rank1_and_low_scores() -> None:
    top_is_mate = np.array([True, True, False, True])
    mate_scores = np.array([0.9, 0.4, 0.95, 0.8])
    nonmated_top = np.linspace(0.0, 0.5, 100)
    point = fnir_at_fpir(top_is_mate, mate_scores, nonmated_top, fpir=0.01)
    assert point.rate == pytest.approx(0.5)  # one below threshold, one not at rank 1


def test_rank_rates() -> None:
    ranks = np.array([1, 1, 2, 6, 0])
    assert rank_rate(ranks, 1) == pytest.approx(0.4)
    assert rank_rate(ranks, 5) == pytest.approx(0.6)

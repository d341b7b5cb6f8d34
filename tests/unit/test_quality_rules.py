"""The quality rules without networks: how the unified score is made and said, how each
score falls with its harm, and error versus discard against hand-counted cases."""

from __future__ import annotations

import numpy as np
import pytest

from facedb.domain import QualityComponent as C
from facedb.errors import LowQuality
from facedb.evaluation.discard import discard, threshold_at
from facedb.pipeline import quality
from facedb.services import quality as rules

FINE = {C.INTER_EYE_DISTANCE: 80.0, C.SHARPNESS: 0.1, C.LUMINANCE_MEAN: 128.0,
        C.UNDER_EXPOSURE: 0.0, C.OVER_EXPOSURE: 0.0, C.DYNAMIC_RANGE: 7.2,
        C.ILLUMINATION_UNIFORMITY: 0.05, C.COMPRESSION: 1.0, C.HEAD_POSE_YAW: 2.0,
        C.HEAD_POSE_ROLL: 1.0, C.DETECTION_CONFIDENCE: 0.9999}  # fmt: skip


def test_a_good_face_scores_high_and_says_so() -> None:
    rated = quality.rated(FINE)
    assert rated.score >= 80 and rated.reason.startswith("good")
    assert rules.warning(rated, 40) is None


@pytest.mark.parametrize(
    ("component", "value", "words"),
    [
        (C.INTER_EYE_DISTANCE, 9.0, "eyes 9 px apart: at least 60 are needed"),
        (C.LUMINANCE_MEAN, 12.0, "too dark"),
        (C.LUMINANCE_MEAN, 250.0, "too bright"),
        (C.DETECTION_CONFIDENCE, 0.90, "the detector is unsure"),
        (C.SUBJECT_AGE, 3.0, "a young child's face (about 3)"),
    ],
)
def test_a_severe_capture_component_or_a_young_age_limits_the_score_in_words(
    component: C, value: float, words: str
) -> None:
    rated = quality.rated({**FINE, component: value})
    assert rated.limiting is component and rated.score == rated.components[component].score
    assert rated.score < 40 and words in rated.reason
    warned = rules.warning(rated, 40)
    assert warned is not None and quality.ADVICE[component] in warned
    with pytest.raises(LowQuality, match="FACEDB_QUALITY_FLOOR is 50"):
        rules.refuse_below(rated, 50)
    rules.refuse_below(rated, 0)  # 0: nothing is refused


def test_the_capture_score_is_the_mean_of_its_components_unless_one_is_severe() -> None:
    mild = quality.rated({**FINE, C.INTER_EYE_DISTANCE: 25.0})  # scores 51
    assert mild.score == round((51 + 100 + 100) / 3)
    assert mild.limiting is C.INTER_EYE_DISTANCE and "25 px apart" not in mild.reason  # good
    assert quality.rated({**FINE, C.INTER_EYE_DISTANCE: 12.0}).score == 10


@pytest.mark.parametrize(
    ("component", "value", "words"),
    [
        (C.SHARPNESS, 0.004, "strongly blurred"),
        (C.OVER_EXPOSURE, 0.6, "overexposed: 60% of the face is white"),
        (C.COMPRESSION, 3.0, "strongly compressed: JPEG blocks show"),
        (C.HEAD_POSE_YAW, -55.0, "face turned about 55° to the side"),
    ],
)
def test_a_severe_component_outside_the_score_is_said_beside_it(
    component: C, value: float, words: str
) -> None:
    rated = quality.rated({**FINE, component: value})
    assert rated.components[component].score < quality.SEVERE
    assert rated.score == quality.rated(FINE).score  # did not predict misses: not counted
    assert f"; but {words}" in rated.reason  # the rest of the face is good


def test_each_score_falls_as_its_harm_grows() -> None:
    for component, worse in [(C.INTER_EYE_DISTANCE, [60, 40, 20, 10]),
                             (C.SHARPNESS, [0.08, 0.03, 0.01, 0.004]),
                             (C.COMPRESSION, [1.2, 1.6, 2.0, 2.6]),
                             (C.HEAD_POSE_YAW, [5, 20, 40, 60])]:  # fmt: skip
        scores = [quality.SCORES[component](v) for v in worse]
        assert scores == sorted(scores, reverse=True) and scores[0] > scores[-1], component


def test_error_versus_discard_counts_the_lowest_quality_comparisons() -> None:
    # 20 mated comparisons, 4 missed; the 2 lowest-quality comparisons are both misses.
    missed = np.array([True, True] + [False] * 16 + [True, True])
    q = np.array([1.0, 2.0, *list(np.arange(16) + 10.0), 50.0, 60.0])
    d = discard(missed, q)
    assert d.fnmr == pytest.approx(0.2) and d.ceiling == pytest.approx(5.0)
    assert d.lowest_ratio == pytest.approx(1.0 / 0.2)  # the lowest 10% (2) all missed
    assert d.kept[0.10] == pytest.approx(2 / 18)
    assert threshold_at(np.arange(1000.0), 0.01) == 990.0  # 10 of 1000 reach it

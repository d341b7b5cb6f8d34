"""Ages as a person counts them, and age-check sentences that agree with their verdicts."""

from __future__ import annotations

import re
from datetime import date

import numpy as np
import pytest

from facedb.agecheck import shipped
from facedb.ages import age_on, completed_years
from facedb.domain import AgeVerdict


@pytest.mark.parametrize(
    ("day", "birth", "years"),
    [
        (date(2026, 12, 7), date(1980, 3, 12), 46),  # 46.74: not "47"
        (date(2026, 12, 7), date(2000, 12, 7), 26),  # the birthday itself
        (date(2026, 12, 6), date(2000, 12, 7), 25),  # the day before it
        (date(2025, 2, 28), date(2024, 2, 29), 1),  # a leap-day birth, in a common year
        (date(2025, 2, 27), date(2024, 2, 29), 0),
    ],
)
def test_ages_are_completed_years(day: date, birth: date, years: int) -> None:
    age = age_on(day, birth, None)
    assert age is not None and completed_years(age) == years


def test_a_birth_year_alone_counts_from_mid_year_and_never_below_zero() -> None:
    assert age_on(date(2026, 7, 2), None, 1980) == 46.0
    assert age_on(date(2024, 3, 1), None, 2024) == pytest.approx(0.08, abs=0.01)


SAID = re.compile(r"looks about (\d+);?.*? (?:as |\()(\d+)–(\d+)")


def test_the_sentence_never_contradicts_the_verdict() -> None:
    """Over expected ages 2–90 and readings around them, the whole years the sentence shows
    fit the band exactly when the verdict is consistent."""
    bands = shipped()
    for expected in np.arange(2.0, 90.0, 0.7):
        for estimated in np.arange(max(0.0, expected * 0.4), expected * 2 + 5, 0.1):
            check = bands.check(float(expected), float(estimated))
            shown, low, high = (int(n) for n in SAID.search(check.reason).groups())  # type: ignore[union-attr]
            inside = low <= shown <= high
            assert inside == (check.verdict is AgeVerdict.CONSISTENT), check.reason

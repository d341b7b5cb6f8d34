"""Ages from birth dates: a person's age today, and their age when a photo was taken."""

from __future__ import annotations

import calendar
import math
from datetime import date

from facedb.domain import AgeSource

DAYS_PER_YEAR = 365.2425


def age_on(day: date, birth_date: date | None, birth_year: int | None) -> float | None:
    """Return the age in years on ``day``: the completed years, then the share of the year
    since the last birthday, cut (never rounded up) to two decimals, so that the whole
    years of the answer are the age a person would give (born 1980-03-12: 46.74 on
    2026-12-07, 47.0 on 2027-03-12).

    When only the birth year is known the birth is taken at the middle of the days it can
    have fallen on: mid-year, or, for a day within the birth year itself (an infant's
    photo), halfway between 1 January and that day, so the age is never negative.
    """
    if birth_date is not None:
        return _cut(_calendar_age(day, birth_date))
    if birth_year is not None:
        first = date(birth_year, 1, 1)
        if day.year == birth_year:
            return _cut((day - first).days / 2 / DAYS_PER_YEAR)
        return _cut(_calendar_age(day, date(birth_year, 7, 2)))
    return None


def completed_years(age: float) -> int:
    """Return the whole years of an age: 29.8 is 29, as a person counts."""
    return math.floor(age + 1e-9)


def _calendar_age(day: date, birth: date) -> float:
    years = day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))
    last, following = _birthday(birth, birth.year + years), _birthday(birth, birth.year + years + 1)
    return years + (day - last).days / (following - last).days


def _birthday(birth: date, year: int) -> date:
    """The birthday in ``year`` (29 February falls on 28 February in other years)."""
    if birth.month == 2 and birth.day == 29 and not calendar.isleap(year):
        return date(year, 2, 28)
    return birth.replace(year=year)


def _cut(age: float) -> float:
    return math.floor(age * 100 + 1e-6) / 100


def age_at_photo(
    declared: float | None, estimated: float | None
) -> tuple[float | None, AgeSource | None]:
    """Return a person's age at a photo and its source: declared (birth and photo dates
    known) before estimated (the age model's reading of the face)."""
    if declared is not None:
        return declared, AgeSource.DECLARED
    if estimated is not None:
        return round(estimated, 1), AgeSource.ESTIMATED
    return None, None


def years_apart(
    first: date | None, second: date | None, first_age: float | None, second_age: float | None
) -> float | None:
    """Return the years between two photos: from their dates, else from the ages at them."""
    if first is not None and second is not None:
        return round(abs((first - second).days) / DAYS_PER_YEAR, 1)
    if first_age is not None and second_age is not None:
        return round(abs(first_age - second_age), 1)
    return None


def years_since(day: date | None, today: date) -> float | None:
    return round((today - day).days / DAYS_PER_YEAR, 1) if day is not None else None

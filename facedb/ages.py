"""Ages from birth dates: a person's age today, and their age when a photo was taken."""

from __future__ import annotations

from datetime import date

from facedb.domain import AgeSource

DAYS_PER_YEAR = 365.2425


def age_on(day: date, birth_date: date | None, birth_year: int | None) -> float | None:
    """Return the age in years on ``day``.

    When only the birth year is known the birth is taken at the middle of the days it can
    have fallen on: mid-year, or, for a day within the birth year itself (an infant's
    photo), halfway between 1 January and that day, so the age is never negative.
    """
    if birth_date is not None:
        return round((day - birth_date).days / DAYS_PER_YEAR, 2)
    if birth_year is not None:
        first = date(birth_year, 1, 1)
        if day.year == birth_year:
            return round((day - first).days / 2 / DAYS_PER_YEAR, 2)
        return round((day - date(birth_year, 7, 2)).days / DAYS_PER_YEAR, 2)
    return None


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

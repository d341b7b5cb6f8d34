"""Ages from birth dates: a person's age today, and their age when a photo was taken."""

from __future__ import annotations

from datetime import date


def age_on(day: date, birth_date: date | None, birth_year: int | None) -> float | None:
    """Return the age in years on ``day`` (mid-year assumed when only the year is known)."""
    if birth_date is not None:
        return round((day - birth_date).days / 365.2425, 2)
    if birth_year is not None:
        return round((day - date(birth_year, 7, 2)).days / 365.2425, 2)
    return None

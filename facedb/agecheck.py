"""The age check: does a face's estimated age fit the age a person must have had at the photo?

A person's expected age at a photo comes from their declared birth (date, or year) and the
photo's date. The age model's reading of a face errs, widely for children and the old, so
the check compares the two through r = log((1 + estimated) / (1 + expected)) against bands
calibrated on utk-dev per age group (``bench/age_bands.py`` writes ``age_bands.json``):

- ``consistent``: r within the group's 5th–95th percentile band (nine faces in ten);
- ``unlikely``: outside it, but no further than the farthest face seen in calibration, in
  band-widths from the group's median ("the far limit");
- ``impossible``: beyond the far limit, or the photo is dated before the birth.

No declared birth, or no photo date, or no estimate: no check at all, never a guess.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path

import numpy as np

from facedb.ages import age_on, completed_years
from facedb.domain import AgeVerdict
from facedb.records import AgeCheckRecord, PhotoRecord

BANDS_FILE = Path(__file__).with_name("age_bands.json")
GROUP_STARTS = (0, 3, 12, 25, 45, 65)  # age groups of the calibration (years, from)


@dataclass(frozen=True)
class AgeGroup:
    """The age model's error at ages from ``start``: percentiles of r."""

    start: float
    median: float
    low: float  # 5th percentile
    high: float  # 95th percentile


@dataclass(frozen=True)
class AgeCheck:
    """One face against one expected age, with the verdict and why, in a sentence."""

    expected_age: float | None
    estimated_age: float | None
    band: tuple[float, float] | None  # the usual readings at the expected age, in years
    verdict: AgeVerdict
    predates_birth: bool = False

    @property
    def reason(self) -> str:
        if self.predates_birth:
            return "the photo is dated before the person's birth"
        assert self.expected_age is not None and self.estimated_age is not None and self.band
        low, high = (completed_years(a) for a in self.band)
        said = (
            f"the face looks about {completed_years(self.estimated_age)}; the person was "
            f"{_years(self.expected_age)} at the photo's date"
        )
        if self.verdict is AgeVerdict.CONSISTENT:
            return f"{said}, and the age model reads faces of that age as {low}–{high}"
        if self.verdict is AgeVerdict.UNLIKELY:
            return f"{said}; the age model usually reads faces of that age as {low}–{high}"
        return f"{said}: far beyond the age model's errors at that age ({low}–{high} usual)"

    def record(self) -> AgeCheckRecord:
        return AgeCheckRecord(
            verdict=self.verdict,
            reason=self.reason,
            expected_age=self.expected_age,
            estimated_age=self.estimated_age,
            band=self.band,
        )

    @classmethod
    def stored(
        cls, verdict: AgeVerdict | None, expected: float | None, estimated: float | None
    ) -> AgeCheck | None:
        """Return a check from what a row keeps of it (the band worked out again)."""
        if verdict is None:
            return None
        if expected is None or estimated is None:
            return cls(None, estimated, None, verdict, predates_birth=True)
        return cls(expected, estimated, shipped().check(expected, estimated).band, verdict)


@dataclass(frozen=True)
class AgeBands:
    """The calibrated groups and the far limit (in band-widths from the median)."""

    groups: tuple[AgeGroup, ...]
    far: float

    def group(self, age: float) -> AgeGroup:
        """Return the group of an age (an age below the first group's start: the first)."""
        return next((g for g in reversed(self.groups) if g.start <= age), self.groups[0])

    def distance(self, expected: float, estimated: float) -> float:
        """Return how far the reading lies from the median, in band-widths (1 = the band's
        edge on that side)."""
        g = self.group(expected)
        r = _r(expected, estimated) - g.median
        return r / (g.high - g.median) if r > 0 else -r / (g.median - g.low)

    def check(self, expected: float, estimated: float) -> AgeCheck:
        """Check a reading against the band. The verdict is taken on the whole years the
        sentence shows (a reading of 25.6 against a band from 25.9 is "about 25" within
        "25–46": it fits), so the sentence never contradicts it."""
        g = self.group(expected)
        band = (_age(expected, g.low), _age(expected, g.high))
        shown = completed_years(round(estimated, 1))
        within = completed_years(band[0]) <= shown <= completed_years(band[1])
        z = self.distance(expected, estimated)
        verdict = (
            AgeVerdict.CONSISTENT
            if within or z <= 1
            else AgeVerdict.UNLIKELY
            if z <= self.far
            else AgeVerdict.IMPOSSIBLE
        )
        return AgeCheck(round(expected, 1), round(estimated, 1), band, verdict)

    def as_dict(self) -> dict[str, object]:
        return {
            "about": "bench/age_bands.py: r = log((1 + estimated) / (1 + true age)) on utk-dev",
            "far": round(self.far, 4),
            "groups": [
                {"start": g.start, "median": round(g.median, 4), "low": round(g.low, 4),
                 "high": round(g.high, 4)}
                for g in self.groups
            ],
        }  # fmt: skip


def fit_bands(faces: Sequence[tuple[float, float]]) -> AgeBands:
    """Return bands calibrated on (true age, estimated age) pairs: per group the median and
    5th/95th percentiles of r, and the far limit at the farthest face of the set."""
    groups = []
    for i, start in enumerate(GROUP_STARTS):
        end = GROUP_STARTS[i + 1] if i + 1 < len(GROUP_STARTS) else math.inf
        rs = np.array([_r(t, e) for t, e in faces if start <= t < end])
        low, median, high = np.percentile(rs, [5, 50, 95])
        groups.append(AgeGroup(start, float(median), float(low), float(high)))
    bands = AgeBands(tuple(groups), 1.0)
    far = max(bands.distance(t, e) for t, e in faces)
    return AgeBands(tuple(groups), float(far))


@cache
def shipped() -> AgeBands:
    """Return the packaged bands (calibrated on utk-dev)."""
    data = json.loads(BANDS_FILE.read_text())
    groups = tuple(AgeGroup(**g) for g in data["groups"])
    return AgeBands(groups, float(data["far"]))


def check_face(
    photo_date: date | None,
    birth_date: date | None,
    birth_year: int | None,
    estimated_age: float | None,
) -> AgeCheck | None:
    """Check a face of a photo against the birth of the person it would be; None when
    there is nothing to check against (no birth, no photo date, or no estimate)."""
    if photo_date is None or (birth_date is None and birth_year is None):
        return None
    if (birth_date is not None and photo_date < birth_date) or (
        birth_date is None and birth_year is not None and photo_date.year < birth_year
    ):
        return AgeCheck(None, estimated_age, None, AgeVerdict.IMPOSSIBLE, predates_birth=True)
    expected = age_on(photo_date, birth_date, birth_year)
    if expected is None or estimated_age is None:
        return None
    return shipped().check(max(expected, 0.0), estimated_age)


def checked(photo: PhotoRecord) -> PhotoRecord:
    """The photo with its declared age checked against its faces' estimated ages."""
    check = best_fit(photo.age_at_photo, [f.age for f in photo.faces])
    return photo.model_copy(update={"age_check": check.record() if check else None})


def best_fit(expected: float | None, estimated: Sequence[float | None]) -> AgeCheck | None:
    """Return the check of the face that fits a declared age best (a photo's faces against
    its declared age); None without a declared age or any estimate."""
    if expected is None:
        return None
    bands = shipped()
    readings = [e for e in estimated if e is not None]
    if not readings:
        return None
    closest = min(readings, key=lambda e: bands.distance(expected, e))
    return bands.check(expected, closest)


def _r(expected: float, estimated: float) -> float:
    return math.log((1 + max(estimated, 0.0)) / (1 + max(expected, 0.0)))


def _age(expected: float, r: float) -> float:
    """Return the estimated age at which r takes this value (never below 0)."""
    return round(max(0.0, (1 + expected) * math.exp(r) - 1), 1)


def _years(age: float) -> str:
    """An age as a person says it: completed months under two, completed years after."""
    if age < 2:
        return f"{completed_years(age * 12)} months old"
    return f"{completed_years(age)}"

"""The casework rules without a database: the age check of one face, of a photo's faces, and
as a pair's row keeps it; what speaks for or against a pair and where it goes in the queue."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from facedb.agecheck import AgeCheck, best_fit, check_face, shipped
from facedb.casework.checks import GENDER_ESTIMATE_MIN_AGE, UNCHECKED, PairChecks, check_pair
from facedb.domain import AgeVerdict, EstimatedGender, Gender, MatchState, Register
from facedb.records import RegisterFace

PHOTO = date(2020, 6, 1)


def face(person: str, register: Register, **fields: object) -> RegisterFace:
    base = RegisterFace(
        face_id=1, person_id=person, photo_id="p", in_register=register, taken_at=PHOTO,
        declared_age=None, estimated_age=30.0, estimated_gender=None, gender=None,
        birth_date=None, birth_year=None,
    )  # fmt: skip
    return replace(base, **fields)  # type: ignore[arg-type]


def reading(expected: float, verdict: AgeVerdict) -> float:
    """An estimated age the shipped bands give ``verdict`` against ``expected``."""
    for tenth in range(0, 1200):
        estimate = tenth / 10
        if shipped().check(expected, estimate).verdict is verdict:
            return estimate
    raise AssertionError(f"no reading is {verdict} at {expected}")


def test_nothing_to_check_against_is_no_check_and_a_photo_before_birth_is_impossible() -> None:
    assert check_face(None, date(2000, 1, 1), None, 20.0) is None
    assert check_face(PHOTO, None, None, 20.0) is None
    assert check_face(PHOTO, date(2000, 1, 1), None, None) is None
    before = check_face(date(1999, 5, 1), date(2000, 1, 1), None, 20.0)
    assert before is not None and before.verdict is AgeVerdict.IMPOSSIBLE and before.predates_birth
    assert "before the person's birth" in before.reason
    # A year alone: any photo of that year is possible (an infant of weeks), none before it.
    infant = check_face(date(2010, 3, 1), None, 2010, 0.5)
    assert infant is not None and infant.verdict is AgeVerdict.CONSISTENT
    assert check_face(date(2009, 12, 31), None, 2010, 0.5).verdict is AgeVerdict.IMPOSSIBLE  # type: ignore[union-attr]


@pytest.mark.parametrize("verdict", list(AgeVerdict))
def test_a_stored_check_reads_back_as_the_check_that_was_made(verdict: AgeVerdict) -> None:
    made = shipped().check(20.0, reading(20.0, verdict))
    assert made.verdict is verdict
    again = AgeCheck.stored(made.verdict, made.expected_age, made.estimated_age)
    assert again is not None and again.record() == made.record()
    assert AgeCheck.stored(None, 20.0, 30.0) is None
    erased = AgeCheck.stored(AgeVerdict.IMPOSSIBLE, None, 30.0)
    assert erased is not None and erased.predates_birth


def test_a_photo_is_checked_by_the_face_that_fits_its_declared_age_best() -> None:
    fits, far = reading(8.0, AgeVerdict.CONSISTENT), reading(8.0, AgeVerdict.IMPOSSIBLE)
    best = best_fit(8.0, [far, None, fits])
    assert best is not None and best.verdict is AgeVerdict.CONSISTENT and best.estimated_age == fits
    assert best_fit(None, [fits]) is None and best_fit(8.0, [None]) is None


def test_an_impossible_age_takes_the_pair_out_of_the_queue_and_an_unlikely_one_warns() -> None:
    born = date(2010, 6, 1)  # 10 at the found photo
    missing = face("m", Register.MISSING, birth_date=born)
    for verdict, state, warnings in [
        (AgeVerdict.CONSISTENT, MatchState.PENDING, 0),
        (AgeVerdict.UNLIKELY, MatchState.PENDING, 1),
        (AgeVerdict.IMPOSSIBLE, MatchState.IMPOSSIBLE, 0),
    ]:
        found = face("f", Register.FOUND, estimated_age=reading(10.0, verdict))
        checks = check_pair(missing, found)
        assert checks.age is not None and checks.age.verdict is verdict
        assert (checks.state, checks.warnings) == (state, warnings)
        stored = checks.values()
        assert stored[0] is state and stored[1] is verdict and stored[-1] == warnings


def test_gender_conflicts_come_from_declarations_and_confident_estimates_of_older_faces() -> None:
    male = face("m", Register.MISSING, gender=Gender.MALE)
    assert check_pair(face("m", Register.MISSING), face("f", Register.FOUND)) is UNCHECKED
    assert check_pair(male, face("f", Register.FOUND, gender=Gender.FEMALE)).gender_conflict
    assert not check_pair(male, face("f", Register.FOUND, gender=Gender.MALE)).gender_conflict
    woman = face("f", Register.FOUND, estimated_gender=EstimatedGender.FEMALE, estimated_age=30.0)
    assert check_pair(male, woman).gender_conflict
    child = replace(woman, estimated_age=GENDER_ESTIMATE_MIN_AGE - 1)
    assert not check_pair(male, child).gender_conflict  # young faces' estimates do not count
    unsure = replace(woman, estimated_gender=EstimatedGender.UNKNOWN)
    assert not check_pair(male, unsure).gender_conflict
    both = PairChecks(shipped().check(10.0, reading(10.0, AgeVerdict.UNLIKELY)), True)
    assert (both.warnings, both.state) == (2, MatchState.PENDING)

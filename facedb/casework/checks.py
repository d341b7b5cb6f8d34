"""What speaks for or against a candidate pair besides its score: the age check and the
gender flag, and the warnings they add up to.

The review queue reads pending pairs by warnings (none first), then by evidence (the score's
margin over each person's next-best candidate, ``PairRepository.settle``). Chosen by
measurement on lfw-dev strangers and LAG cross-age identities (``bench/queue_bench.py``,
docs/CASEWORK.md): read in this order, a reviewer reaches the true links in far fewer pairs
than by raw score, and no pair is dropped.
"""

from __future__ import annotations

from facedb.agecheck import check_face
from facedb.domain import EstimatedGender, Gender
from facedb.records import RegisterFace
from facedb.store.pairs import PairChecks

# Confident gender estimates of faces read under 13 are wrong about one time in three on
# utk-dev (3% above): younger faces never raise the flag (bench/age_bands.py).
GENDER_ESTIMATE_MIN_AGE = 13.0
_ESTIMATE_OF = {EstimatedGender.MALE: Gender.MALE, EstimatedGender.FEMALE: Gender.FEMALE}


UNCHECKED = PairChecks(None, False)
_DECLARED = (Gender.MALE, Gender.FEMALE)


def check_pair(missing: RegisterFace, found: RegisterFace) -> PairChecks:
    """Check the found face against the missing person's declared birth, and each side's
    declared gender against the other side's."""
    no_birth = missing.birth_date is None and missing.birth_year is None
    if no_birth and missing.gender not in _DECLARED and found.gender not in _DECLARED:
        return UNCHECKED  # nothing declared to check against (most pairs of a batch)
    age = check_face(found.taken_at, missing.birth_date, missing.birth_year, found.estimated_age)
    return PairChecks(age, _conflict(missing, found) or _conflict(found, missing))


def _conflict(person: RegisterFace, face: RegisterFace) -> bool:
    """Whether ``person``'s declared gender contradicts the other side's declared gender, or
    the other face's confident estimate when that face is read as 13 or older."""
    declared = person.gender
    if declared not in (Gender.MALE, Gender.FEMALE):
        return False
    if face.gender in (Gender.MALE, Gender.FEMALE):
        return face.gender != declared
    seen = _ESTIMATE_OF.get(face.estimated_gender) if face.estimated_gender else None
    old_enough = face.estimated_age is not None and face.estimated_age >= GENDER_ESTIMATE_MIN_AGE
    return seen is not None and old_enough and seen != declared

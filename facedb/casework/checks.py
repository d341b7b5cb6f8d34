"""What speaks for or against a candidate pair besides its score: the age check and the
gender flag, and the warnings they add up to.

The review queue reads pending pairs by warnings (none first), then by evidence (the score's
margin over each person's next-best candidate, ``PairRepository.settle``). Chosen by
measurement on lfw-dev strangers and LAG cross-age identities (``bench/queue_bench.py``,
docs/CASEWORK.md): read in this order, a reviewer reaches the true links in far fewer pairs
than by raw score, and no pair is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from facedb.agecheck import AgeCheck, best_fit, check_face
from facedb.domain import AgeVerdict, EstimatedGender, Gender, MatchState
from facedb.records import PairRecord, PairSide, RegisterFace
from facedb.store.unit import Unit

# Confident gender estimates of faces read under 13 are wrong about one time in three on
# utk-dev (3% above): younger faces never raise the flag (bench/age_bands.py).
GENDER_ESTIMATE_MIN_AGE = 13.0
_ESTIMATE_OF = {EstimatedGender.MALE: Gender.MALE, EstimatedGender.FEMALE: Gender.FEMALE}


@dataclass(frozen=True)
class PairChecks:
    """What speaks for or against a pair besides its score, and what follows from it."""

    age: AgeCheck | None
    gender_conflict: bool

    @property
    def warnings(self) -> int:
        unlikely = self.age is not None and self.age.verdict is AgeVerdict.UNLIKELY
        return int(unlikely) + int(self.gender_conflict)

    @property
    def state(self) -> MatchState:
        """Where an undecided pair belongs: out of the queue when the age check rules it out."""
        impossible = self.age is not None and self.age.verdict is AgeVerdict.IMPOSSIBLE
        return MatchState.IMPOSSIBLE if impossible else MatchState.PENDING

    def values(self) -> tuple[Any, ...]:
        """What the pair's row stores of them (``store.pair_writes.CheckValues``)."""
        age = self.age
        return (
            self.state,
            age.verdict if age else None,
            age.expected_age if age else None,
            age.estimated_age if age else None,
            self.gender_conflict,
            self.warnings,
        )


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


def described(unit: Unit, pairs: list[PairRecord]) -> list[PairRecord]:
    """The pairs as people read them: each stored age check in words, each side's photo
    warning where its declared age fits none of its faces, and each side's face quality."""
    stored = unit.pairs.stored_checks([p.id for p in pairs])
    sides = [s for p in pairs for s in (p.missing, p.found) if s.person and s.photo_id]
    flagged = unit.pairs.flagged_photos([s.photo_id for s in sides if s.photo_id])
    warnings = {}
    for photo_id, photo in flagged.items():
        check = best_fit(photo.declared_age, photo.estimated)
        if check is not None:
            warnings[photo_id] = check.record()

    qualities = unit.qualities.of_faces([s.face_id for s in sides if s.face_id is not None])

    def side(s: PairSide) -> PairSide:
        warning = warnings.get(s.photo_id) if s.person and s.photo_id else None
        quality = qualities.get(s.face_id) if s.person and s.face_id is not None else None
        return s.model_copy(update={"photo_warning": warning, "quality": quality})

    out = []
    for pair in pairs:
        check = AgeCheck.stored(*stored[pair.id]) if pair.id in stored else None
        update = {"age_check": check.record() if check else None,
                  "missing": side(pair.missing), "found": side(pair.found)}  # fmt: skip
        out.append(pair.model_copy(update=update))
    return out

"""The plain records the store hands out and the services hand back.

No ORM row leaves the store: a record is a frozen pydantic model, read from its row's
attributes once, that never lazy-loads and can cross threads. The API's response models
extend these records (adding links and derived values) instead of restating them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any, TypedDict

import numpy as np
from numpy.typing import NDArray
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from facedb.domain import (
    AgeSource,
    AgeVerdict,
    AuditAction,
    AxisOutcome,
    EstimatedGender,
    Gender,
    InconclusiveReason,
    MatchState,
    PersonStatus,
    QualityComponent,
    Register,
    Role,
)


def utc(moment: datetime) -> datetime:
    """Return the time as UTC-aware (SQLite hands back naive UTC datetimes)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


Moment = Annotated[datetime, AfterValidator(utc)]
ESTIMATED_GENDER = (
    "estimated: `male`, `female`, or `unknown` when the networks are less sure than "
    "FACEDB_GENDER_MIN_PROBABILITY; null when no estimate was made"
)


@dataclass(frozen=True)
class Box:
    """A face rectangle in pixels of the upright original photo."""

    x: int
    y: int
    w: int
    h: int

    def as_dict(self) -> dict[str, int]:
        return {"x": self.x, "y": self.y, "w": self.w, "h": self.h}


class Record(BaseModel):
    """A frozen value read from attributes (a row, or another record)."""

    model_config = ConfigDict(frozen=True, from_attributes=True)


class NoteRecord(Record):
    """A case note: who wrote it (the key's name), when, and what."""

    id: int
    person_id: str
    text: str
    author: str | None
    created_at: datetime


# A person's own text fields, in characters: the columns, the API and the importer hold them.
NAME_MAX_LENGTH = 300
EXTERNAL_REF_MAX_LENGTH = 200


class PersonFields(TypedDict, total=False):
    """A person's own fields as a caller gives them: every one it has to create a person,
    those that change to update one (the API's bodies, an import's row, a command)."""

    id: str  # only where an archive restores a person under its id
    name: str
    external_ref: str | None
    gender: Gender | None
    birth_date: date | None
    birth_year: int | None
    status: PersonStatus
    attributes: dict[str, Any]


class PersonRecord(Record):
    id: str
    external_ref: str | None
    name: str
    gender: Gender | None
    birth_date: date | None
    birth_year: int | None
    status: PersonStatus
    attributes: Annotated[dict[str, Any], BeforeValidator(lambda v: v or {})]
    linked_person_id: str | None = Field(
        description="the person a confirmed cross-match linked this one to"
    )
    linked_erased_at: Moment | None = Field(
        None, description="when the linked person's record was erased (the link is then null)"
    )
    created_at: Moment
    updated_at: Moment


class PersonFilter(Record):
    """Which persons a listing shows: a status, a name substring, a case number."""

    status: PersonStatus | None = None
    name: str | None = None
    external_ref: str | None = None


class QualityMeasure(Record):
    value: float = Field(description="in the component's own unit (docs/QUALITY.md)")
    score: int = Field(ge=0, le=100, description="0-100; 100: no harm to matching expected")


class QualityRecord(Record):
    """A face's image quality as ISO/IEC 29794-5 describes it (components approximated)."""

    score: int = Field(
        ge=0, le=100, description="unified 0-100: the lowest of the components that count"
    )
    limiting: QualityComponent = Field(description="the component that sets the score")
    reason: str = Field(description="what the limiting component means for matching")
    components: dict[QualityComponent, QualityMeasure]


class FaceRecord(Record):
    id: int
    photo_id: str
    person_id: str
    box: Box
    landmarks: dict[str, Any]
    confidence: float
    age: float | None
    gender: EstimatedGender | None = Field(description=ESTIMATED_GENDER)
    gender_probability: float | None
    quality: QualityRecord | None = Field(
        None, description="null for a face stored before quality was measured"
    )


class PhotoRecord(Record):
    id: str
    person_id: str
    sha256: str
    filename: str | None = Field(None, description="the file's name as uploaded")
    media_type: str
    width: int
    height: int
    taken_at: date | None
    age_at_photo: float | None
    age_conflict: bool = Field(
        False,
        description="the declared age (birth and photo date) fits none of its faces' "
        "estimated ages: a misfiled photo, or a wrong date",
    )
    created_at: Moment
    faces: list[FaceRecord] = []
    age_check: AgeCheckRecord | None = Field(
        None,
        description="the declared age against the face's estimated age "
        "null without a declared age (birth and photo date) or an estimate",
    )


class FaceInContext(Record):
    """A face with its person, and the date and declared age of its photo."""

    face: FaceRecord
    person: PersonRecord
    taken_at: date | None
    declared_age: float | None

    @property
    def person_id(self) -> str:
        return self.person.id


@dataclass(frozen=True, slots=True)
class RegisterFace:
    """A face of a person in a register, with what a candidate pair records about it.

    A plain dataclass, not a Record: cross-matching builds one per face it meets, by the
    hundred thousand, and it never leaves the casework room."""

    face_id: int
    person_id: str
    photo_id: str
    in_register: Register
    taken_at: date | None
    declared_age: float | None
    estimated_age: float | None
    estimated_gender: EstimatedGender | None
    gender: Gender | None  # the person's, declared
    birth_date: date | None
    birth_year: int | None


class AgeCheckRecord(Record):
    """A face's estimated age against the age its person must have had at the photo."""

    verdict: AgeVerdict
    reason: str = Field(description="the verdict in a sentence")
    expected_age: float | None = Field(
        description="the person's age at the photo's date, from their declared birth"
    )
    estimated_age: float | None = Field(description="the age model's reading of the face")
    band: tuple[float, float] | None = Field(
        description="the ages the model usually reads for a face of the expected age "
        "(nine faces in ten, calibrated on utk-dev)"
    )


class PairSide(Record):
    """One person of a candidate pair: who (None once erased), which face, and their age
    at it. An erased side keeps nothing but what the decision needs."""

    person: PersonRecord | None = Field(description="null once the person was erased")
    person_id: str
    face_id: int | None
    photo_id: str | None
    taken_at: date | None
    age_at_photo: float | None
    age_source: AgeSource | None
    photo_warning: AgeCheckRecord | None = Field(
        None,
        description="the photo's own age check when its declared age (birth and photo "
        "date) fits none of its faces (the case page's age conflict: a misfiled photo or a "
        "wrong date); null when it fits or cannot be checked",
    )
    quality: QualityRecord | None = Field(
        None, description="the side's face image quality (null: not measured or erased)"
    )


class Decision(Record):
    by: str | None = Field(description="the name of the key that decided")
    at: Moment
    note: str | None
    reason: InconclusiveReason | None = Field(
        None,
        description="why the reviewer could not decide (an `inconclusive` decision; kept when "
        "a new photo brings the pair back to the queue)",
    )


class Claim(Record):
    by: str = Field(description="the name of the key working on the pair")
    until: Moment = Field(description="when the claim lapses unless renewed")


class PairRecord(Record):
    """A cross-match candidate pair as the review queue shows it."""

    id: int
    state: MatchState
    score: float
    rank: int = Field(
        description="the found person's place among every candidate raised for the missing "
        "person, by score (1 = their best)"
    )
    evidence: float = Field(
        description="how far the score stands above each person's next-best candidate (the "
        "mean of the two margins); the queue reads pairs by warnings, then evidence"
    )
    warnings: int = Field(description="checks that speak against the pair (age, gender)")
    age_check: AgeCheckRecord | None = Field(
        description="the found face against the missing person's declared birth; null "
        "without a birth, a found photo date or an age estimate"
    )
    gender_conflict: bool = Field(
        description="a declared gender differs from the other side's declared gender or "
        "confident estimate (faces read as 13 or older): a flag, never a filter"
    )
    years_between: float | None
    missing: PairSide
    found: PairSide
    created_at: Moment
    raised_at: Moment = Field(description="when a face pair last raised the score")
    decision: Decision | None
    claim: Claim | None = Field(
        None, description="a reviewer working on the pair, until when; null when none"
    )
    superseded_by: int | None = Field(
        description="the confirmed pair that took this one out of the queue"
    )


class PairFilter(Record):
    """Which pairs the queue shows: a state, a score floor, one person's pairs, the pairs
    of a case number (either side), with or without warnings, within an age gap."""

    state: MatchState | None = None
    min_score: float | None = None
    person_id: str | None = None
    external_ref: str | None = None
    warned: bool | None = None
    max_years_between: float | None = None


class Caller(Record):
    """Who made a request: the key (None in keyless local mode or when refused) and address."""

    key_id: str | None
    key_name: str | None
    role: Role | None
    client: str | None


class AuditRecord(Record):
    id: int
    at: Moment
    action: AuditAction
    key_id: str | None
    key_name: str | None
    client: str | None
    faces_found: int
    results: list[Any]
    took_ms: float
    names: dict[str, str] = Field(
        default_factory=dict,
        description="the name of each person the results name, while their record exists",
    )


class KeyRecord(Record):
    id: str
    name: str
    role: Role
    prefix: str
    created_at: Moment
    revoked_at: Moment | None


# --- an age axis ------------------------------------------------------------------------------
AGE_AXIS_TAG = "/minus-age-axis-"  # a version with it: its base's, an age axis removed


@dataclass(frozen=True)
class AgeAxis:
    """The directions removed (one unit vector per part of the base recipe) and what they
    were learned from."""

    base_version: str
    directions: tuple[NDArray[np.float32], ...]
    faces: int = 0
    aged_faces: int = 0
    children: int = 0  # of the faces with an age, those under 13 (age_axis.CHILDHOOD_ENDS)
    adults: int = 0  # and those of 20 or over (ADULTHOOD_STARTS)
    age_correlations: tuple[float, ...] = ()

    @property
    def version(self) -> str:
        digest = hashlib.sha256(self.packed_directions()).hexdigest()[:8]
        return f"{self.base_version}{AGE_AXIS_TAG}{digest}"

    def packed_directions(self) -> bytes:
        """The directions end to end as little-endian float32 (what the version digests and
        the database stores; ``unpack_directions`` reads it back)."""
        return b"".join(np.asarray(d, "<f4").tobytes() for d in self.directions)


@dataclass(frozen=True)
class AxisAttempt:
    """The service's last attempt to learn the age axis by itself."""

    faces: int  # the faces held when it was tried
    outcome: AxisOutcome
    reason: str
    at: datetime


def unpack_directions(data: bytes, part_dimensions: list[int]) -> tuple[NDArray[np.float32], ...]:
    """Return the directions ``AgeAxis.packed_directions`` wrote, one per part."""
    flat = np.frombuffer(data, dtype="<f4").astype(np.float32)
    return tuple(np.split(flat, np.cumsum(part_dimensions)[:-1]))

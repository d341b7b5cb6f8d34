"""Request and response bodies. These shapes are the contract other tools rely on."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Annotated, Any, Generic, Literal, Self, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    computed_field,
)

from facedb.ages import age_on
from facedb.domain import (
    AgeSource,
    AxisMode,
    EstimatedGender,
    Gender,
    InconclusiveReason,
    PersonStatus,
    Register,
    UploadStatus,
)
from facedb.pipeline.types import Box
from facedb.pipeline.types import Face as DetectedFace
from facedb.records import (
    ESTIMATED_GENDER,
    EXTERNAL_REF_MAX_LENGTH,
    NAME_MAX_LENGTH,
    AgeCheckRecord,
    AuditRecord,
    FaceRecord,
    NoteRecord,
    PairRecord,
    PairSide,
    PersonRecord,
    PhotoRecord,
    QualityRecord,
)
from facedb.services.search import Candidate, SearchResult

ItemT = TypeVar("ItemT")


def no_nul(value: Any) -> Any:
    """Refuse NUL characters anywhere in a value (PostgreSQL cannot store them)."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("must not contain a NUL character")
    elif isinstance(value, dict):
        for key, item in value.items():
            no_nul(key)
            no_nul(item)
    elif isinstance(value, list):
        for item in value:
            no_nul(item)
    return value


Text = Annotated[str, AfterValidator(no_nul)]


def iso_only(value: Any) -> Any:
    """Refuse a number where a date is due (pydantic would read it as a Unix timestamp)."""
    if not isinstance(value, str | date):
        raise ValueError("must be a date written YYYY-MM-DD")
    return value


IsoDate = Annotated[date, BeforeValidator(iso_only)]
Attributes = Annotated[dict[str, Any], AfterValidator(no_nul)]


class PersonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text = Field(min_length=1, max_length=NAME_MAX_LENGTH)
    external_ref: Text | None = Field(
        default=None, min_length=1, max_length=EXTERNAL_REF_MAX_LENGTH
    )
    gender: Gender | None = None
    birth_date: IsoDate | None = Field(default=None, description="1900-01-01 … today")
    birth_year: int | None = Field(
        default=None, ge=1900, le=2200, description="1900 … this year; must agree with birth_date"
    )
    status: PersonStatus = PersonStatus.MISSING
    attributes: Attributes = Field(default_factory=dict, description="free JSON, at most 16 KiB")


class PersonPatch(BaseModel):
    """Only the fields sent change; ``null`` clears a field (never the name)."""

    model_config = ConfigDict(extra="forbid")

    name: Text = Field(  # type: ignore[assignment]
        default=None, min_length=1, max_length=NAME_MAX_LENGTH
    )
    external_ref: Text | None = Field(
        default=None, min_length=1, max_length=EXTERNAL_REF_MAX_LENGTH
    )
    gender: Gender | None = None
    birth_date: IsoDate | None = None
    birth_year: int | None = Field(default=None, ge=1900, le=2200)
    status: PersonStatus | None = None
    attributes: Attributes | None = None


class FromRecord(BaseModel):
    """A response read straight from a service's record (its attributes and properties)."""

    model_config = ConfigDict(from_attributes=True)


class PhotoPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    taken_at: IsoDate | None = Field(description="the day the photo was taken; null: unknown")


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Text = Field(description="what happened, in words (1 to 10,000 characters)")


class NoteOut(NoteRecord):
    pass


class PersonOut(PersonRecord):
    @computed_field(description="age today, from the birth date or year")  # type: ignore[prop-decorator]
    @property
    def age(self) -> float | None:
        return age_on(date.today(), self.birth_date, self.birth_year)


class Page(BaseModel, Generic[ItemT]):
    """One page of a listing: its items and how many match in all."""

    items: list[ItemT]
    total: int
    limit: int
    offset: int

    @classmethod
    def of(cls, items: Sequence[Any], total: int, limit: int, offset: int) -> Self:
        """Return the page, each item read from its record."""
        return cls.model_validate({"items": items, "total": total, "limit": limit,
                                   "offset": offset})  # fmt: skip


class PersonPage(Page[PersonOut]):
    pass


class FaceOut(FaceRecord):
    @computed_field  # type: ignore[prop-decorator]
    @property
    def crop_url(self) -> str:
        return f"/v1/faces/{self.id}/crop"


class PhotoOut(PhotoRecord):
    faces: list[FaceOut]  # type: ignore[assignment]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def image_url(self) -> str:
        return f"/v1/photos/{self.id}/image"


class ErrorOut(FromRecord):
    code: str
    message: str


class UploadResult(FromRecord):
    filename: str
    status: UploadStatus
    photo: PhotoOut | None
    error: ErrorOut | None
    warning: str | None = Field(
        None, description="stored, but its face will search badly: why, and which photo to add"
    )


class UploadReport(FromRecord):
    person_id: str
    stored: int
    duplicates: int
    refused: int
    results: list[UploadResult]


class CandidateOut(BaseModel):
    person: PersonOut
    score: float = Field(description="cosine similarity, -1..1")
    match: bool
    face_id: int
    photo_id: str
    taken_at: date | None = Field(description="the date of the matched photo, if known")
    age_at_photo: float | None = Field(description="the person's age at the matched photo")
    age_source: AgeSource | None = Field(
        description="`declared` (birth date and photo date) or `estimated` (the age model)"
    )
    years_since_photo: float | None = Field(description="when the probe has no taken_at")
    years_between: float | None = Field(description="when the probe has a taken_at")
    age_check: AgeCheckRecord | None = Field(
        description="the probe face's estimated age against this person's declared birth at "
        "the probe's taken_at; null without a birth, a taken_at or an estimate"
    )
    quality: QualityRecord | None = Field(
        description="the matched face's image quality (null: stored before it was measured)"
    )
    crop_url: str
    photo_url: str

    @classmethod
    def of(cls, candidate: Candidate, years: tuple[float | None, float | None]) -> CandidateOut:
        """The wire shape flattens the matched face and adds the years (on purpose)."""
        face = candidate.face
        flat = {"face_id": face.id, "photo_id": face.photo_id, "quality": face.quality,
                "score": round(candidate.score, 5)}  # fmt: skip
        links = {"crop_url": f"/v1/faces/{face.id}/crop",
                 "photo_url": f"/v1/photos/{face.photo_id}/image"}  # fmt: skip
        years_of = {"years_since_photo": years[0], "years_between": years[1]}
        check = candidate.age_check.record() if candidate.age_check else None
        return cls.model_validate(
            {**vars(candidate), **flat, **links, **years_of, "age_check": check}
        )


class ProbeFaceOut(BaseModel):
    box: Box
    confidence: float
    age: float | None
    gender: EstimatedGender | None = Field(description=ESTIMATED_GENDER)
    gender_probability: float | None
    quality: QualityRecord | None = Field(
        description="the searched face's image quality: a low score says why it may be missed"
    )
    candidates: list[CandidateOut]

    @classmethod
    def probe(cls, face: DetectedFace, candidates: list[CandidateOut]) -> ProbeFaceOut:
        quality = face.quality.as_dict() if face.quality else None
        return cls(
            quality=QualityRecord.model_validate(quality) if quality else None,
            box=face.box,
            confidence=round(face.detection.confidence, 4),
            age=face.age,
            gender=face.gender,
            gender_probability=face.gender_probability,
            candidates=candidates,
        )


class SearchedOut(BaseModel):
    persons: int = Field(description="persons with at least one face, before the filters")
    faces: int = Field(description="faces in the index")


class SearchOut(BaseModel):
    faces: list[ProbeFaceOut]
    threshold: float
    probe_taken_at: date | None
    searched: SearchedOut = Field(
        description="the register the search ran against: how deep a candidate list is "
        "worth reading depends on its size (ask for up to 100 candidates with k)"
    )
    took_ms: float

    @classmethod
    def of(cls, result: SearchResult, took_ms: float) -> SearchOut:
        today = date.today()
        return cls(
            faces=[
                ProbeFaceOut.probe(
                    m.face, [CandidateOut.of(c, result.years(c, today)) for c in m.candidates]
                )
                for m in result.faces
            ],
            threshold=result.threshold,
            probe_taken_at=result.probe_taken_at,
            searched=SearchedOut(persons=result.searched.persons, faces=result.searched.faces),
            took_ms=round(took_ms, 2),
        )


class VerifyOut(BaseModel):
    match: bool
    score: float
    threshold: float
    person_id: str
    face_id: int | None
    probe: ProbeFaceOut
    took_ms: float


class JobOut(BaseModel):
    job: dict[str, Any]


class AgeAxisOut(BaseModel):
    mode: AxisMode = Field(description="FACEDB_AGE_AXIS: `auto` (the default) or `off`")
    on: bool = Field(description="the served embeddings have the age axis removed")
    reason: str = Field(description="why it is (not) removed, and when it is tried next")
    faces: int = Field(description="faces indexed now")
    learned_from: int | None = Field(description="faces the served axis was learned from")
    next_attempt_at: int | None = Field(
        description="the face count at which the service learns it (again); null: never by itself"
    )
    running: bool = Field(description="a process is learning it now")


class HealthOut(BaseModel):
    status: str = Field(
        description="`ok`, or `unavailable` while the database or the Milvus index is down"
    )
    database: bool
    auth: str = Field(description="`keys`, or `keyless-local` (no key was ever created)")
    index: dict[str, Any] = Field(
        description="`available`; the backend, faces, generation, last change applied, "
        "model version and whether a re-embed is required; or `error` when unavailable"
    )
    models: dict[str, bool]
    crossmatch: dict[str, Any] = Field(
        description="`pending`: faces enrolled in a register and not yet cross-matched"
    )
    notifications: dict[str, Any] = Field(
        description="`enabled` (a webhook URL is set); then the outbox's events `pending`, "
        "`delivered` and `parked` (every attempt failed: sent again after POST "
        "/v1/admin/notifications/retry), `oldest_pending_s` and `last_error`"
    )
    age_axis: AgeAxisOut | None = Field(
        default=None, description="whether the age axis is removed from every embedding "
        "and search, and why (not); null while the database is down"
    )  # fmt: skip


class RequeuedOut(BaseModel):
    requeued: int = Field(description="parked webhook events put back in line")


class MatchSideOut(PairSide):
    person: PersonOut | None = Field(description="null once the person was erased")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def crop_url(self) -> str | None:
        return f"/v1/faces/{self.face_id}/crop" if self.face_id else None


class MatchOut(PairRecord):
    missing: MatchSideOut
    found: MatchSideOut


class MatchPage(Page[MatchOut]):
    pass


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["confirmed", "rejected", "inconclusive"]
    note: Text | None = Field(default=None, max_length=2000)
    reason: InconclusiveReason | None = Field(
        default=None,
        description="with `inconclusive` only, and then required: what would decide it "
        "(`better_photo`, `second_examiner`, `dna_or_dental`)",
    )


class MeOut(BaseModel):
    """Who the key belongs to, what its role may do, and the thresholds a page shows."""

    name: str | None
    role: str | None
    permissions: list[str]
    auth: str = Field(description="`keys`, or `keyless-local` (no key was ever created)")
    match_threshold: float
    candidate_threshold: float
    reject_note_required: bool = Field(
        description="rejecting a pair needs a note (FACEDB_REJECT_NOTE_REQUIRED)"
    )
    quality_warn_below: int = Field(
        description="a face's quality below this is shown as one that will search badly"
    )


AuditOut = AuditRecord


class PersonQualityOut(BaseModel):
    """A person's photos as quality sees them."""

    faces: int
    measured: int = Field(description="faces whose quality was measured at enrolment")
    best: QualityRecord | None = Field(description="the best measured face's quality")
    warning: str | None = Field(
        description="set when even the best face is below FACEDB_QUALITY_WARN_BELOW: "
        "searches will miss this person until a better photo is added"
    )


class ToAskOut(BaseModel):
    person_id: str
    name: str
    external_ref: str | None
    status: PersonStatus
    best: QualityRecord | None
    advice: str = Field(description="why, and which photo to ask the family for")


class RegisterQualityOut(BaseModel):
    name: Register = Field(description="the register")
    persons: int
    faces: int
    measured: int
    bands: dict[str, int] = Field(description="faces per band of unified score")
    below: list[ToAskOut] = Field(
        description="persons whose best photo is below FACEDB_QUALITY_WARN_BELOW, or with "
        "no measured face: the ones to ask for another photo"
    )

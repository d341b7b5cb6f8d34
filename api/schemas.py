"""Request and response bodies. These shapes are the contract other tools rely on."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from facedb.domain import AgeSource, Gender, MatchState, PersonStatus, UploadStatus
from facedb.pipeline.types import Box
from facedb.pipeline.types import Face as DetectedFace
from facedb.service.ages import age_on
from facedb.service.enrollment import EnrollmentReport, PhotoResult
from facedb.service.records import FaceRecord, PersonRecord, PhotoRecord
from facedb.service.review import MatchRecord, MatchSide
from facedb.service.search import Candidate, SearchResult


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

    name: Text = Field(min_length=1, max_length=300)
    external_ref: Text | None = Field(default=None, min_length=1, max_length=200)
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

    name: Text = Field(default=None, min_length=1, max_length=300)  # type: ignore[assignment]
    external_ref: Text | None = Field(default=None, min_length=1, max_length=200)
    gender: Gender | None = None
    birth_date: IsoDate | None = None
    birth_year: int | None = Field(default=None, ge=1900, le=2200)
    status: PersonStatus | None = None
    attributes: Attributes | None = None


class PersonOut(BaseModel):
    id: str
    external_ref: str | None
    name: str
    gender: str | None
    birth_date: date | None
    birth_year: int | None
    age: float | None = Field(description="age today, from the birth date or year")
    status: str
    attributes: dict[str, Any]
    linked_person_id: str | None = Field(
        description="the person a confirmed cross-match linked this one to"
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, person: PersonRecord) -> PersonOut:
        return cls(
            age=age_on(date.today(), person.birth_date, person.birth_year),
            **{k: getattr(person, k) for k in PersonRecord.__dataclass_fields__},
        )


class PersonPage(BaseModel):
    items: list[PersonOut]
    total: int
    limit: int
    offset: int


class BoxOut(BaseModel):
    x: int
    y: int
    w: int
    h: int

    @classmethod
    def of(cls, box: Box) -> BoxOut:
        return cls(**box.as_dict())


class FaceOut(BaseModel):
    id: int
    photo_id: str
    box: BoxOut
    landmarks: dict[str, Any]
    confidence: float
    age: float | None
    gender: str | None = Field(
        description="estimated: `male`, `female`, or `unknown` when the network is less sure "
        "than FACEDB_GENDER_MIN_PROBABILITY; null when no estimate was made"
    )
    gender_probability: float | None
    crop_url: str

    @classmethod
    def of(cls, face: FaceRecord) -> FaceOut:
        return cls(
            id=face.id,
            photo_id=face.photo_id,
            box=BoxOut.of(face.box),
            landmarks=face.landmarks,
            confidence=face.confidence,
            age=face.age,
            gender=face.gender,
            gender_probability=face.gender_probability,
            crop_url=f"/v1/faces/{face.id}/crop",
        )


class PhotoOut(BaseModel):
    id: str
    person_id: str
    sha256: str
    media_type: str
    width: int
    height: int
    taken_at: date | None
    age_at_photo: float | None
    created_at: datetime
    image_url: str
    faces: list[FaceOut]

    @classmethod
    def of(cls, photo: PhotoRecord) -> PhotoOut:
        return cls(
            id=photo.id,
            person_id=photo.person_id,
            sha256=photo.sha256,
            media_type=photo.media_type,
            width=photo.width,
            height=photo.height,
            taken_at=photo.taken_at,
            age_at_photo=photo.age_at_photo,
            created_at=photo.created_at,
            image_url=f"/v1/photos/{photo.id}/image",
            faces=[FaceOut.of(f) for f in photo.faces],
        )


class ErrorOut(BaseModel):
    code: str
    message: str


class UploadResult(BaseModel):
    filename: str
    status: UploadStatus
    photo: PhotoOut | None
    error: ErrorOut | None

    @classmethod
    def of(cls, result: PhotoResult) -> UploadResult:
        error = result.error
        return cls(
            filename=result.filename,
            status=result.status,
            photo=PhotoOut.of(result.photo) if result.photo else None,
            error=ErrorOut(code=error.code, message=error.message) if error else None,
        )


class UploadReport(BaseModel):
    person_id: str
    stored: int
    duplicates: int
    refused: int
    results: list[UploadResult]

    @classmethod
    def of(cls, report: EnrollmentReport) -> UploadReport:
        return cls(
            person_id=report.person_id,
            stored=report.count(UploadStatus.STORED),
            duplicates=report.count(UploadStatus.DUPLICATE),
            refused=report.count(UploadStatus.REFUSED),
            results=[UploadResult.of(r) for r in report.results],
        )


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
    crop_url: str
    photo_url: str

    @classmethod
    def of(cls, candidate: Candidate, years: tuple[float | None, float | None]) -> CandidateOut:
        face = candidate.face
        return cls(
            person=PersonOut.of(candidate.person),
            score=round(candidate.score, 5),
            match=candidate.match,
            face_id=face.id,
            photo_id=face.photo_id,
            taken_at=candidate.taken_at,
            age_at_photo=candidate.age_at_photo,
            age_source=candidate.age_source,
            years_since_photo=years[0],
            years_between=years[1],
            crop_url=f"/v1/faces/{face.id}/crop",
            photo_url=f"/v1/photos/{face.photo_id}/image",
        )


class ProbeFaceOut(BaseModel):
    box: BoxOut
    confidence: float
    age: float | None
    gender: str | None = Field(
        description="estimated: `male`, `female`, or `unknown` when the network is less sure "
        "than FACEDB_GENDER_MIN_PROBABILITY; null when no estimate was made"
    )
    gender_probability: float | None
    candidates: list[CandidateOut]

    @classmethod
    def probe(cls, face: DetectedFace, candidates: list[CandidateOut]) -> ProbeFaceOut:
        return cls(
            box=BoxOut.of(face.box),
            confidence=round(face.detection.confidence, 4),
            age=face.age,
            gender=face.gender,
            gender_probability=face.gender_probability,
            candidates=candidates,
        )


class SearchOut(BaseModel):
    faces: list[ProbeFaceOut]
    threshold: float
    probe_taken_at: date | None
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


class MatchSideOut(BaseModel):
    person: PersonOut | None = Field(description="null once the person was deleted")
    face_id: int | None
    photo_id: str | None
    taken_at: date | None
    age_at_photo: float | None
    age_source: AgeSource | None
    crop_url: str | None

    @classmethod
    def of(cls, side: MatchSide) -> MatchSideOut:
        return cls(
            person=PersonOut.of(side.person) if side.person else None,
            face_id=side.face_id,
            photo_id=side.photo_id,
            taken_at=side.taken_at,
            age_at_photo=side.age_at_photo,
            age_source=side.age_source,
            crop_url=f"/v1/faces/{side.face_id}/crop" if side.face_id else None,
        )


class DecisionOut(BaseModel):
    by: str | None = Field(description="the name of the key that decided")
    at: datetime
    note: str | None


class MatchOut(BaseModel):
    id: int
    state: MatchState
    score: float
    rank: int = Field(description="the found person's place among the missing face's candidates")
    years_between: float | None
    missing: MatchSideOut
    found: MatchSideOut
    created_at: datetime
    raised_at: datetime = Field(description="when a face pair last raised the score")
    decision: DecisionOut | None

    @classmethod
    def of(cls, match: MatchRecord) -> MatchOut:
        decision = match.decision
        return cls(
            id=match.id,
            state=match.state,
            score=match.score,
            rank=match.rank,
            years_between=match.years_between,
            missing=MatchSideOut.of(match.missing),
            found=MatchSideOut.of(match.found),
            created_at=match.created_at,
            raised_at=match.raised_at,
            decision=DecisionOut(by=decision.by, at=decision.at, note=decision.note)
            if decision
            else None,
        )


class MatchPage(BaseModel):
    items: list[MatchOut]
    total: int
    limit: int
    offset: int


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["confirmed", "rejected"]
    note: Text | None = Field(default=None, max_length=2000)


class MeOut(BaseModel):
    """Who the key belongs to, what its role may do, and the thresholds a page shows."""

    name: str | None
    role: str | None
    permissions: list[str]
    auth: str = Field(description="`keys`, or `keyless-local` (no key was ever created)")
    match_threshold: float
    candidate_threshold: float


class AuditOut(BaseModel):
    id: int
    at: datetime
    action: str
    key_id: str | None
    key_name: str | None
    client: str | None
    faces_found: int
    results: list[Any]
    took_ms: float

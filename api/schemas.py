"""Request and response bodies. These shapes are the contract other tools rely on."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from facedb.domain import Gender, PersonStatus, UploadStatus
from facedb.pipeline.types import Box
from facedb.pipeline.types import Face as DetectedFace
from facedb.service.ages import age_on
from facedb.service.enrollment import EnrollmentReport, PhotoResult
from facedb.service.records import FaceRecord, PersonRecord, PhotoRecord
from facedb.service.search import Candidate


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
Attributes = Annotated[dict[str, Any], AfterValidator(no_nul)]


class PersonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text = Field(min_length=1, max_length=300)
    external_ref: Text | None = Field(default=None, min_length=1, max_length=200)
    gender: Gender | None = None
    birth_date: date | None = Field(default=None, description="1900-01-01 … today")
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
    birth_date: date | None = None
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
    gender: str | None
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

    @classmethod
    def of(cls, candidate: Candidate) -> CandidateOut:
        return cls(
            person=PersonOut.of(candidate.person),
            score=round(candidate.score, 5),
            match=candidate.match,
            face_id=candidate.face.id,
            photo_id=candidate.face.photo_id,
        )


class ProbeFaceOut(BaseModel):
    box: BoxOut
    confidence: float
    age: float | None
    gender: str | None
    gender_probability: float | None
    candidates: list[CandidateOut]

    @classmethod
    def probe(cls, face: DetectedFace, candidates: list[Candidate]) -> ProbeFaceOut:
        return cls(
            box=BoxOut.of(face.box),
            confidence=round(face.detection.confidence, 4),
            age=face.age,
            gender=face.gender,
            gender_probability=face.gender_probability,
            candidates=[CandidateOut.of(c) for c in candidates],
        )


class SearchOut(BaseModel):
    faces: list[ProbeFaceOut]
    threshold: float
    took_ms: float


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
    status: str = Field(description="`ok`, or `unavailable` while the database is down")
    database: bool
    auth: str = Field(description="`keys`, or `keyless-local` (no key was ever created)")
    index: dict[str, Any]
    models: dict[str, bool]

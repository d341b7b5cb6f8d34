"""Request and response bodies. These shapes are the contract other tools rely on."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from facedb.pipeline.types import Face as DetectedFace
from facedb.service.ages import age_on
from facedb.store.models import Face, Person, Photo


def utc(moment: datetime) -> datetime:
    """Return the time as UTC-aware (SQLite hands back naive UTC datetimes)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


Status = Literal["missing", "found", "closed", "unidentified", "other"]
Gender = Literal["male", "female", "other"]


class PersonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=300)
    external_ref: str | None = Field(default=None, min_length=1, max_length=200)
    gender: Gender | None = None
    birth_date: date | None = None
    birth_year: int | None = Field(default=None, ge=1880, le=2200)
    status: Status = "missing"
    attributes: dict[str, Any] = Field(default_factory=dict)

    @field_validator("birth_date")
    @classmethod
    def _not_in_future(cls, value: date | None) -> date | None:
        if value is not None and value > date.today():
            raise ValueError("birth_date is in the future")
        return value


class PersonPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=300)
    external_ref: str | None = Field(default=None, min_length=1, max_length=200)
    gender: Gender | None = None
    birth_date: date | None = None
    birth_year: int | None = Field(default=None, ge=1880, le=2200)
    status: Status | None = None
    attributes: dict[str, Any] | None = None


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
    def of(cls, person: Person) -> PersonOut:
        return cls(
            id=person.id,
            external_ref=person.external_ref,
            name=person.name,
            gender=person.gender,
            birth_date=person.birth_date,
            birth_year=person.birth_year,
            age=age_on(date.today(), person.birth_date, person.birth_year),
            status=person.status,
            attributes=person.attributes or {},
            created_at=utc(person.created_at),
            updated_at=utc(person.updated_at),
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
    def of(cls, face: Face) -> FaceOut:
        return cls(
            id=face.id,
            photo_id=face.photo_id,
            box=BoxOut(x=face.box_x, y=face.box_y, w=face.box_w, h=face.box_h),
            landmarks=face.landmarks or {},
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
    def of(cls, photo: Photo, faces: list[Face]) -> PhotoOut:
        return cls(
            id=photo.id,
            person_id=photo.person_id,
            sha256=photo.sha256,
            media_type=photo.media_type,
            width=photo.width,
            height=photo.height,
            taken_at=photo.taken_at,
            age_at_photo=photo.age_at_photo,
            created_at=utc(photo.created_at),
            image_url=f"/v1/photos/{photo.id}/image",
            faces=[FaceOut.of(f) for f in faces],
        )


class ErrorOut(BaseModel):
    code: str
    message: str


class UploadResult(BaseModel):
    filename: str
    status: Literal["stored", "duplicate", "refused"]
    photo: PhotoOut | None
    error: ErrorOut | None


class UploadReport(BaseModel):
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


class ProbeFaceOut(BaseModel):
    box: BoxOut
    confidence: float
    age: float | None
    gender: str | None
    gender_probability: float | None
    candidates: list[CandidateOut]

    @classmethod
    def probe(cls, face: DetectedFace, candidates: list[CandidateOut]) -> ProbeFaceOut:
        return cls(
            box=BoxOut(**face.box.as_dict()),
            confidence=round(face.detection.confidence, 4),
            age=face.age,
            gender=face.gender,
            gender_probability=face.gender_probability,
            candidates=candidates,
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

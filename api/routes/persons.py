"""Persons and their photos."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Query, Response, UploadFile
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.auth import ENROLL, READ, require
from api.deps import facedb, read_upload
from api.errors import envelope, status_of
from api.schemas import (
    ErrorOut,
    PersonIn,
    PersonOut,
    PersonPage,
    PersonPatch,
    PhotoOut,
    UploadReport,
    UploadResult,
)
from facedb.errors import FaceDBError, ImageError, InvalidInput
from facedb.service import enrollment, persons
from facedb.service.audit import Caller
from facedb.service.context import FaceDB
from facedb.store import repository as repo
from facedb.store.db import transaction

router = APIRouter(prefix="/v1", tags=["persons"])
DB = Annotated[FaceDB, Depends(facedb)]


@router.post("/persons", status_code=201, response_model=PersonOut)
def create_person(
    body: PersonIn, db: DB, _: Annotated[Caller, Depends(require(ENROLL))]
) -> PersonOut:
    return PersonOut.of(persons.create_person(db, body.model_dump()))


@router.get("/persons", response_model=PersonPage)
def list_persons(
    db: DB,
    _: Annotated[Caller, Depends(require(READ))],
    status: str | None = None,
    name: str | None = None,
    external_ref: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> PersonPage:
    items, total = persons.list_persons(
        db, status=status, name=name, external_ref=external_ref, limit=limit, offset=offset
    )
    return PersonPage(
        items=[PersonOut.of(p) for p in items], total=total, limit=limit, offset=offset
    )


@router.get("/persons/{person_id}", response_model=PersonOut)
def get_person(person_id: str, db: DB, _: Annotated[Caller, Depends(require(READ))]) -> PersonOut:
    return PersonOut.of(persons.get_person(db, person_id))


@router.patch("/persons/{person_id}", response_model=PersonOut)
def patch_person(
    person_id: str, body: PersonPatch, db: DB, _: Annotated[Caller, Depends(require(ENROLL))]
) -> PersonOut:
    fields = body.model_dump(exclude_unset=True)
    if "name" in fields and fields["name"] is None:
        raise InvalidInput("name cannot be null")
    return PersonOut.of(persons.update_person(db, person_id, fields))


@router.delete("/persons/{person_id}", status_code=204)
def delete_person(
    person_id: str, db: DB, _: Annotated[Caller, Depends(require(ENROLL))]
) -> Response:
    persons.delete_person(db, person_id)
    return Response(status_code=204)


@router.post("/persons/{person_id}/photos", response_model=UploadReport, status_code=201)
async def upload_photos(
    person_id: str,
    db: DB,
    _: Annotated[Caller, Depends(require(ENROLL))],
    response: Response,
    files: Annotated[list[UploadFile], File(description="one or more photos")],
    taken_at: Annotated[date | None, Form(description="when the photos were taken")] = None,
) -> UploadReport | Response:
    """Store each photo that shows exactly one face; every file is reported on its own.

    201 when at least one photo was stored, 200 when all were already stored, and the
    first refusal's status (400, 413, 415, 422) when every file was refused.
    """
    if taken_at is not None and taken_at > date.today():
        raise InvalidInput("taken_at is in the future")
    payloads: list[tuple[str, bytes]] = []
    early: dict[int, ImageError] = {}
    for i, upload in enumerate(files):
        try:
            payloads.append(
                (
                    upload.filename or f"file{i}",
                    await read_upload(upload, db.settings.max_image_bytes),
                )
            )
        except ImageError as exc:
            early[i] = exc
            payloads.append((upload.filename or f"file{i}", b""))
    readable = [(i, p) for i, p in enumerate(payloads) if i not in early]
    outcomes = await run_in_threadpool(
        enrollment.enroll_photos, db, person_id, [p for _, p in readable], taken_at
    )
    by_index = dict(zip([i for i, _ in readable], outcomes, strict=True))
    results: list[UploadResult] = []
    refusals: list[FaceDBError] = []
    for i, (filename, _data) in enumerate(payloads):
        outcome = by_index.get(i)
        error = early.get(i) or (outcome.error if outcome else None)
        photo = outcome.photo if outcome else None
        if error is not None:
            refusals.append(error)
        results.append(
            UploadResult(
                filename=filename,
                status=outcome.status if outcome else "refused",  # type: ignore[arg-type]
                photo=PhotoOut.of(photo, outcome.faces) if photo and outcome else None,
                error=ErrorOut(code=error.code, message=error.message) if error else None,
            )
        )
    report = UploadReport(
        person_id=person_id,
        stored=sum(r.status == "stored" for r in results),
        duplicates=sum(r.status == "duplicate" for r in results),
        refused=len(refusals),
        results=results,
    )
    if refusals and report.refused == len(results):
        first = refusals[0]
        body = envelope(
            first.code, first.message, results=[r.model_dump(mode="json") for r in results]
        )
        return JSONResponse(body, status_code=status_of(first))
    if report.stored == 0:
        response.status_code = 200
    return report


@router.get("/persons/{person_id}/photos", response_model=list[PhotoOut])
def list_photos(
    person_id: str, db: DB, _: Annotated[Caller, Depends(require(READ))]
) -> list[PhotoOut]:
    with transaction(db.sessions) as session:
        repo.get_person(session, person_id)
        return [PhotoOut.of(p, f) for p, f in repo.photos_of(session, person_id)]


@router.delete("/photos/{photo_id}", status_code=204)
def delete_photo(photo_id: str, db: DB, _: Annotated[Caller, Depends(require(ENROLL))]) -> Response:
    enrollment.delete_photo(db, photo_id)
    return Response(status_code=204)


@router.get("/photos/{photo_id}/image", response_class=Response)
def photo_image(photo_id: str, db: DB, _: Annotated[Caller, Depends(require(READ))]) -> Response:
    with transaction(db.sessions) as session:
        photo = repo.get_photo(session, photo_id)
        return Response(photo.content, media_type=photo.media_type)


@router.get("/faces/{face_id}/crop", response_class=Response)
def face_crop(face_id: int, db: DB, _: Annotated[Caller, Depends(require(READ))]) -> Response:
    with transaction(db.sessions) as session:
        face = repo.get_face(session, face_id)
        return Response(face.crop_jpeg, media_type="image/jpeg")

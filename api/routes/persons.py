"""Persons and their photos."""

from __future__ import annotations

from datetime import date
from typing import Annotated, cast

from fastapi import APIRouter, Depends, File, Form, Query, Response, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from api.auth import require
from api.deps import Enrollment, Exports, Notes, Persons, Qualities, TableExports
from api.envelope import documented, envelope
from api.errors import status_of
from api.routes.common import (
    CSV_RESPONSES,
    CsvResponse,
    FaceId,
    Limit,
    Offset,
    PersonId,
    PhotoId,
    strict_query,
)
from api.schemas import (
    NoteIn,
    NoteOut,
    PersonIn,
    PersonOut,
    PersonPage,
    PersonPatch,
    PersonQualityOut,
    PhotoOut,
    PhotoPatch,
    Text,
    UploadReport,
)
from facedb.domain import Permission, PersonStatus, UploadOutcome
from facedb.errors import InvalidInput
from facedb.records import Caller, PersonFields, PersonFilter
from facedb.services.uploads import Upload

router = APIRouter(prefix="/v1", tags=["persons"], dependencies=[Depends(strict_query)])
Reader = Annotated[Caller, Depends(require(Permission.READ))]
Enroller = Annotated[Caller, Depends(require(Permission.ENROLL))]
NoteWriter = Annotated[Caller, Depends(require(Permission.NOTE))]
COMMON = (401, 403, 422, 503)
IMAGES: dict[str, object] = {"image/jpeg": {}, "image/png": {}, "image/webp": {}}


@router.post(
    "/persons", status_code=201, response_model=PersonOut, responses=documented(*COMMON, 400, 409)
)
def create_person(body: PersonIn, persons: Persons, caller: Enroller) -> PersonOut:
    return PersonOut.model_validate(persons.create(cast(PersonFields, body.model_dump()), caller))


def person_filter(
    status: PersonStatus | None = None,
    name: Annotated[Text | None, Query(max_length=300, description="a substring")] = None,
    external_ref: Annotated[Text | None, Query(max_length=200)] = None,
) -> PersonFilter:
    return PersonFilter(status=status, name=name, external_ref=external_ref)


Where = Annotated[PersonFilter, Depends(person_filter)]


@router.get("/persons", response_model=PersonPage, responses=documented(*COMMON))
def list_persons(
    persons: Persons, _: Reader, where: Where, limit: Limit = 50, offset: Offset = 0
) -> PersonPage:
    items, total = persons.page(where, limit, offset)
    return PersonPage.of(items, total, limit, offset)


@router.get("/exports/persons.csv", responses=CSV_RESPONSES)
def persons_csv(tables: TableExports, caller: Reader, where: Where) -> CsvResponse:
    """The persons `GET /v1/persons` lists with these filters, every one, as CSV for a
    spreadsheet (a cell that would run as a formula is defused); audited as an export."""
    return CsvResponse.download(tables.persons(where, caller), "persons.csv")


@router.get("/persons/{person_id}", response_model=PersonOut, responses=documented(*COMMON, 404))
def get_person(person_id: PersonId, persons: Persons, _: Reader) -> PersonOut:
    return PersonOut.model_validate(persons.get(person_id))


@router.patch(
    "/persons/{person_id}",
    response_model=PersonOut,
    responses=documented(*COMMON, 400, 404, 409),
)
def patch_person(
    person_id: PersonId, body: PersonPatch, persons: Persons, caller: Enroller
) -> PersonOut:
    fields = cast(PersonFields, body.model_dump(exclude_unset=True))  # only the fields sent
    return PersonOut.model_validate(persons.update(person_id, fields, caller))


@router.delete("/persons/{person_id}", status_code=204, responses=documented(*COMMON, 404))
def delete_person(person_id: PersonId, persons: Persons, caller: Enroller) -> Response:
    persons.delete(person_id, caller)
    return Response(status_code=204)


@router.post(
    "/persons/{person_id}/notes",
    status_code=201,
    response_model=NoteOut,
    responses=documented(*COMMON, 400, 404),
)
def add_note(person_id: PersonId, body: NoteIn, notes: Notes, caller: NoteWriter) -> NoteOut:
    """Append a case note (enroller, reviewer); notes are never edited or deleted, and are
    erased with the person."""
    return NoteOut.model_validate(notes.add(person_id, body.text, caller))


@router.get(
    "/persons/{person_id}/notes", response_model=list[NoteOut], responses=documented(*COMMON, 404)
)
def list_notes(person_id: PersonId, notes: Notes, _: Reader) -> list[NoteOut]:
    """A person's case notes, oldest first, with author (the key's name) and time."""
    return [NoteOut.model_validate(n) for n in notes.of_person(person_id)]


@router.get(
    "/persons/{person_id}/report",
    response_class=Response,  # errors stay documented as JSON; the page is text/html
    responses={
        200: {"content": {"text/html": {}}, "description": "the case report"},
        **documented(*COMMON, 404),
    },
)
def case_report(person_id: PersonId, exports: Exports, caller: Reader) -> HTMLResponse:
    """The person's case report: record, photos over time, pairs and decisions, case notes,
    an audit extract, as one self-contained HTML page that prints on A4 (audited as an
    export: the photos are inside it)."""
    page = exports.report_for(person_id, caller)
    headers = {
        "Content-Disposition": f'attachment; filename="case-{person_id}.html"',
        # the page's own styles and embedded photos, nothing else
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
    }
    return HTMLResponse(page, headers=headers)


@router.post(
    "/persons/{person_id}/photos",
    response_model=UploadReport,
    status_code=201,
    responses={
        200: {"model": UploadReport, "description": "every photo was already stored"},
        **documented(*COMMON, 400, 404, 413, 415),
    },
)
async def upload_photos(
    person_id: PersonId,
    enrollment: Enrollment,
    caller: Enroller,
    files: Annotated[list[UploadFile], File(description="one or more photos")],
    taken_at: Annotated[
        list[str],
        Form(
            description="when the photos were taken (YYYY-MM-DD): one date for all, or one "
            "per file in the files' order, an empty one for a photo of unknown date"
        ),
    ] = [],  # noqa: B006 - FastAPI copies defaults
) -> UploadReport | JSONResponse:
    """Store each photo that shows exactly one face; every file is reported on its own,
    its date too (a file whose date is impossible is refused, saying why, and the others
    are stored).

    201 when at least one photo was stored, 200 when all were already stored, and the
    first refusal's status (400, 413, 415, 422) when every file was refused.
    """
    dates = _dates_per_file(taken_at, len(files))
    uploads = [
        Upload(f.filename or f"file{i}", f.file, *_date_of(sent))
        for i, (f, sent) in enumerate(zip(files, dates, strict=True))
    ]
    report = await run_in_threadpool(enrollment.enroll, person_id, uploads, caller)
    body = UploadReport.model_validate(report)
    if report.outcome is UploadOutcome.REFUSED and (first := report.first_error) is not None:
        extra: dict[str, object] = {"results": [r.model_dump(mode="json") for r in body.results]}
        if isinstance(first, InvalidInput) and first.field:
            extra["details"] = [{"field": first.field, "problem": first.message}]
        return JSONResponse(envelope(first.code, first.message, **extra), status_of(first))
    status = 201 if report.outcome is UploadOutcome.CREATED else 200
    return JSONResponse(body.model_dump(mode="json"), status_code=status)


def _dates_per_file(dates: list[str], files: int) -> list[str]:
    if not dates:
        return [""] * files
    if len(dates) in (1, files):
        return [dates[0] if len(dates) == 1 else dates[i] for i in range(files)]
    raise InvalidInput(
        f"{len(dates)} photo dates for {files} files: send one date for all, or one per file "
        "(empty for a photo of unknown date)",
        field="taken_at",
    )


def _date_of(sent: str) -> tuple[date | None, str | None]:
    """A file's date as sent: (the date, None), (None, None) when empty, or (None, what was
    sent) when it is not a date (its file is refused, saying so)."""
    if not sent.strip():
        return None, None
    try:
        if len(sent) <= 10:
            return date.fromisoformat(sent.strip()), None
    except ValueError:
        pass
    return None, sent[:40]


@router.get(
    "/persons/{person_id}/photos", response_model=list[PhotoOut], responses=documented(*COMMON, 404)
)
def list_photos(person_id: PersonId, enrollment: Enrollment, _: Reader) -> list[PhotoOut]:
    return [PhotoOut.model_validate(p) for p in enrollment.photos_of(person_id)]


@router.get(
    "/persons/{person_id}/quality",
    response_model=PersonQualityOut,
    responses=documented(*COMMON, 404),
)
def person_quality(person_id: PersonId, quality: Qualities, _: Reader) -> PersonQualityOut:
    """The person's best face and, when even that one is too low to search by, a warning
    saying which photo to look for."""
    return PersonQualityOut.model_validate(vars(quality.of_person(person_id)))


@router.patch(
    "/photos/{photo_id}", response_model=PhotoOut, responses=documented(*COMMON, 400, 404)
)
def patch_photo(
    photo_id: PhotoId, body: PhotoPatch, persons: Persons, caller: Enroller
) -> PhotoOut:
    """Change the date a photo was taken (``null``: unknown). Its declared age and age check
    follow, and so do the person's undecided pairs (dates, ages, years between, age check)."""
    return PhotoOut.model_validate(persons.redate_photo(photo_id, body.taken_at, caller))


@router.delete("/photos/{photo_id}", status_code=204, responses=documented(*COMMON, 404))
def delete_photo(photo_id: PhotoId, enrollment: Enrollment, caller: Enroller) -> Response:
    enrollment.delete_photo(photo_id, caller)
    return Response(status_code=204)


@router.get(
    "/photos/{photo_id}/image",
    response_class=Response,
    responses={
        200: {"content": IMAGES, "description": "the original bytes"},
        **documented(*COMMON, 404),
    },
)
def photo_image(photo_id: PhotoId, enrollment: Enrollment, _: Reader) -> Response:
    content, media_type = enrollment.photo_content(photo_id)
    return Response(content, media_type=media_type)


@router.get(
    "/faces/{face_id}/crop",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}}, "description": "the aligned face"},
        **documented(*COMMON, 404),
    },
)
def face_crop(face_id: FaceId, enrollment: Enrollment, _: Reader) -> Response:
    return Response(enrollment.face_crop(face_id), media_type="image/jpeg")

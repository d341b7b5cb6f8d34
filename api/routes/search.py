"""1:N search and 1:N verification; the services audit every attempt."""

from __future__ import annotations

import time
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from api.auth import require
from api.deps import Search
from api.envelope import documented
from api.routes.common import strict_query
from api.schemas import ProbeFaceOut, SearchOut, Text, VerifyOut
from facedb.domain import Gender, Permission, PersonStatus
from facedb.records import Caller
from facedb.services.search import SearchFilters
from facedb.services.uploads import Upload

router = APIRouter(prefix="/v1", tags=["search"], dependencies=[Depends(strict_query)])
Searcher = Annotated[Caller, Depends(require(Permission.SEARCH))]
PHOTO_ERRORS = documented(400, 401, 403, 413, 415, 422, 503)


@router.post("/search", response_model=SearchOut, responses=PHOTO_ERRORS)
async def search(
    request: Request,
    searching: Search,
    caller: Searcher,
    file: Annotated[UploadFile, File(description="the photo to search with")],
    k: Annotated[
        int,
        Form(
            ge=1,
            le=100,
            description="identities per face; ask up to 100 for an investigation "
            "(`searched` says the register's size)",
        ),
    ] = 5,
    threshold: Annotated[float | None, Form(ge=-1, le=1)] = None,
    gender: Annotated[Gender | None, Form()] = None,
    include_unknown_gender: Annotated[
        bool, Form(description="with `gender`, keep persons whose gender is not recorded")
    ] = True,
    min_age: Annotated[float | None, Form(ge=0, le=150, description="age today")] = None,
    max_age: Annotated[float | None, Form(ge=0, le=150, description="age today")] = None,
    status: Annotated[PersonStatus | None, Form()] = None,
    taken_at: Annotated[
        date | None,
        Form(
            description="when the searched photo was taken: candidates then carry the "
            "years between the two photos"
        ),
    ] = None,
) -> SearchOut:
    """Every face in the photo, each with up to k identities, best first, with the age
    context of each candidate's photo."""
    start = time.perf_counter()
    filters = SearchFilters(gender, include_unknown_gender, min_age, max_age, status)
    photo = Upload(file.filename or "probe", file.file, taken_at)
    result = await run_in_threadpool(searching.search, caller, photo, k, threshold, filters)
    took = time.perf_counter() - start
    request.app.state.metrics.observe_search(took)
    return SearchOut.of(result, took * 1000)


@router.post("/verify", response_model=VerifyOut, responses={**PHOTO_ERRORS, **documented(404)})
async def verify(
    searching: Search,
    caller: Searcher,
    file: Annotated[UploadFile, File()],
    person_id: Annotated[Text, Form(min_length=1, max_length=100)],
    threshold: Annotated[float | None, Form(ge=-1, le=1)] = None,
) -> VerifyOut:
    """Is the (largest) face in the photo this person? Compared with all their faces."""
    start = time.perf_counter()
    photo = Upload(file.filename or "probe", file.file)
    result = await run_in_threadpool(searching.verify, caller, photo, person_id, threshold)
    return VerifyOut(
        match=result.match,
        score=round(result.score, 5),
        threshold=result.threshold,
        person_id=person_id,
        face_id=result.best_face.id if result.best_face else None,
        probe=ProbeFaceOut.probe(result.face, []),
        took_ms=round((time.perf_counter() - start) * 1000, 2),
    )

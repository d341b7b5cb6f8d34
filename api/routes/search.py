"""1:N search and 1:N verification; both are written to the audit trail."""

from __future__ import annotations

import logging
import time
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from api.auth import SEARCH, require
from api.deps import facedb, read_upload
from api.schemas import CandidateOut, PersonOut, ProbeFaceOut, SearchOut, VerifyOut
from facedb.errors import FaceDBError, NoFaceFound
from facedb.service import audit
from facedb.service.audit import Caller
from facedb.service.context import FaceDB
from facedb.service.search import SearchFilters, search_photo, verify

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["search"])
DB = Annotated[FaceDB, Depends(facedb)]


@router.post("/search", response_model=SearchOut)
async def search(
    request: Request,
    db: DB,
    caller: Annotated[Caller, Depends(require(SEARCH))],
    file: Annotated[UploadFile, File(description="the photo to search with")],
    k: Annotated[int, Form(ge=1, le=100)] = 5,
    threshold: Annotated[float | None, Form(ge=-1, le=1)] = None,
    gender: Annotated[Literal["male", "female", "other"] | None, Form()] = None,
    min_age: Annotated[float | None, Form(ge=0, le=150)] = None,
    max_age: Annotated[float | None, Form(ge=0, le=150)] = None,
    status: Annotated[str | None, Form()] = None,
) -> SearchOut:
    """Every face in the photo, each with up to k identities, best first."""
    start = time.perf_counter()
    data = await read_upload(file, db.settings.max_image_bytes)
    filters = SearchFilters(gender=gender, min_age=min_age, max_age=max_age, status=status)
    try:
        matches = await run_in_threadpool(search_photo, db, data, k, threshold, filters)
    except FaceDBError as exc:
        _audit_failure(db, "search", caller, start, exc)
        raise
    took_ms = (time.perf_counter() - start) * 1000
    request.app.state.metrics.observe_search(took_ms / 1000)
    faces = [
        ProbeFaceOut.probe(
            m.face,
            [
                CandidateOut(
                    person=PersonOut.of(c.person),
                    score=round(c.score, 5),
                    match=c.match,
                    face_id=c.face.id,
                    photo_id=c.face.photo_id,
                )
                for c in m.candidates
            ],
        )
        for m in matches
    ]
    used = db.settings.match_threshold if threshold is None else threshold
    trail = [
        {"box": f.box.model_dump(), "candidates": [
            {"person_id": c.person.id, "score": c.score, "match": c.match} for c in f.candidates
        ]}
        for f in faces
    ]  # fmt: skip
    await run_in_threadpool(audit.record, db, "search", caller, len(faces), trail, took_ms)
    if not faces:
        raise NoFaceFound("no face was found in the photo")
    return SearchOut(faces=faces, threshold=used, took_ms=round(took_ms, 2))


@router.post("/verify", response_model=VerifyOut)
async def verify_person(
    db: DB,
    caller: Annotated[Caller, Depends(require(SEARCH))],
    file: Annotated[UploadFile, File()],
    person_id: Annotated[str, Form()],
    threshold: Annotated[float | None, Form(ge=-1, le=1)] = None,
) -> VerifyOut:
    """Is the (largest) face in the photo this person? Compared with all their faces."""
    start = time.perf_counter()
    data = await read_upload(file, db.settings.max_image_bytes)
    try:
        result = await run_in_threadpool(verify, db, data, person_id, threshold)
    except FaceDBError as exc:
        _audit_failure(db, "verify", caller, start, exc)
        raise
    took_ms = (time.perf_counter() - start) * 1000
    trail = [{"person_id": person_id, "score": result.score, "match": result.match}]
    await run_in_threadpool(audit.record, db, "verify", caller, 1, trail, took_ms)
    return VerifyOut(
        match=result.match,
        score=round(result.score, 5),
        threshold=result.threshold,
        person_id=person_id,
        face_id=result.best_face.id if result.best_face else None,
        probe=ProbeFaceOut.probe(result.face, []),
        took_ms=round(took_ms, 2),
    )


def _audit_failure(db: FaceDB, action: str, caller: Caller, start: float, exc: FaceDBError) -> None:
    took_ms = (time.perf_counter() - start) * 1000
    try:
        audit.record(db, action, caller, 0, [{"error": exc.code}], took_ms)
    except FaceDBError as failure:  # the database may be the reason the request failed
        log.warning("could not audit a failed %s: %s", action, failure.message)

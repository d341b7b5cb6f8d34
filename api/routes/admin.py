"""Health, metrics and the admin re-index job."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from api.auth import ADMIN, require
from api.deps import facedb
from api.schemas import JobOut
from facedb.errors import NotFound
from facedb.service.audit import Caller
from facedb.service.context import FaceDB
from facedb.service.jobs import Job
from facedb.service.reindex import reindex
from facedb.store.db import ping

router = APIRouter(tags=["admin"])
DB = Annotated[FaceDB, Depends(facedb)]


@router.get("/v1/health")
def health(db: DB) -> Response:
    """Database reachable, index size, models loaded. 503 while the database is down."""
    database = ping(db.engine)
    body = {
        "status": "ok" if database else "unavailable",
        "database": database,
        "index": {
            "faces": db.index.count,
            "generation": db.index.generation,
            "kind": db.index.index.kind,
            "device": db.index.index.device,
            "last_change": db.index.last_change,
        },
        "models": db.analyzer.loaded(),
    }
    return JSONResponse(body, status_code=200 if database else 503)


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(request: Request, db: DB) -> PlainTextResponse:
    text = request.app.state.metrics.render(db.index.count)
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")


@router.post("/v1/admin/reindex", status_code=202, response_model=JobOut)
def start_reindex(
    db: DB, _: Annotated[Caller, Depends(require(ADMIN))], re_embed: bool = False
) -> JobOut:
    """Start a re-index (or, with re_embed=true, a re-embed) in the background."""
    job = Job(kind="reindex", params={"re_embed": re_embed})
    started = db.jobs.submit(job, lambda j: reindex(db, j, re_embed))
    return JobOut(job=started.as_dict())


@router.get("/v1/admin/jobs/{job_id}", response_model=JobOut)
def get_job(job_id: str, db: DB, _: Annotated[Caller, Depends(require(ADMIN))]) -> JobOut:
    job = db.jobs.get(job_id)
    if job is None:
        raise NotFound(f"no job with id {job_id} (jobs are kept in memory until restart)")
    return JobOut(job=job.as_dict())

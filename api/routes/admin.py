"""Health, metrics and the admin re-index job."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from api.auth import AuthModeCache, require
from api.envelope import documented
from api.routes.common import DB, strict_query
from api.schemas import HealthOut, JobOut
from facedb.domain import JobKind, Permission
from facedb.errors import NotFound
from facedb.service.audit import Caller
from facedb.service.jobs import Job
from facedb.service.reindex import reindex
from facedb.store.db import ping

router = APIRouter(tags=["admin"], dependencies=[Depends(strict_query)])
Admin = Annotated[Caller, Depends(require(Permission.ADMIN))]


@router.get(
    "/v1/health",
    response_model=HealthOut,
    responses={
        503: {"model": HealthOut, "description": "the database is down"},
        **documented(422),
    },
)
def health(request: Request, db: DB) -> JSONResponse:
    """Database reachable, auth mode, index size, models loaded. 503 while the database is down."""
    database = ping(db.engine)
    modes: AuthModeCache = request.app.state.auth_modes
    body = HealthOut(
        status="ok" if database else "unavailable",
        database=database,
        auth=modes.current().value if database else "unknown",
        index={
            "faces": db.index.count,
            "generation": db.index.generation,
            "kind": db.index.index.kind,
            "device": db.index.index.device,
            "last_change": db.index.last_change,
        },
        models=db.analyzer.loaded(),
    )
    return JSONResponse(body.model_dump(), status_code=200 if database else 503)


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}}}, **documented(422)},
)
def metrics(request: Request, db: DB) -> PlainTextResponse:
    text = request.app.state.metrics.render(db.index.count)
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")


@router.post(
    "/v1/admin/reindex", status_code=202, response_model=JobOut, responses=documented(401, 403, 422)
)
def start_reindex(
    db: DB,
    _: Admin,
    re_embed: Annotated[bool, Query(description="recompute every embedding")] = False,
) -> JobOut:
    """Start a re-index (or, with re_embed=true, a re-embed) in the background."""
    job = Job(kind=JobKind.REINDEX, params={"re_embed": re_embed})
    started = db.jobs.submit(job, lambda j: reindex(db, j, re_embed))
    return JobOut(job=started.as_dict())


@router.get(
    "/v1/admin/jobs/{job_id}", response_model=JobOut, responses=documented(401, 403, 404, 422)
)
def get_job(job_id: Annotated[str, Path(min_length=1, max_length=100)], db: DB, _: Admin) -> JobOut:
    job = db.jobs.get(job_id)
    if job is None:
        raise NotFound(f"no job with id {job_id} (jobs are kept in memory until restart)")
    return JobOut(job=job.as_dict())

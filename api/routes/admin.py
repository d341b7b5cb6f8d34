"""Health, metrics, the caller, the audit trail and the admin jobs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from api.auth import AuthModeCache, require
from api.deps import Audit, Crossmatch, Health, Jobs, Qualities, Reindex, TableExports, Webhooks
from api.envelope import documented
from api.routes.common import CSV_RESPONSES, CsvResponse, strict_query
from api.schemas import (
    AgeAxisOut,
    AuditOut,
    HealthOut,
    JobOut,
    MeOut,
    RegisterQualityOut,
    RequeuedOut,
    Text,
)
from facedb.domain import AuditAction, JobKind, Permission, Register, may
from facedb.errors import NotFound
from facedb.records import Caller
from facedb.services.quality import RegisterQuality
from facedb.trail.jobs import Job

router = APIRouter(tags=["admin"], dependencies=[Depends(strict_query)])
Admin = Annotated[Caller, Depends(require(Permission.ADMIN))]


@router.get(
    "/v1/health",
    response_model=HealthOut,
    responses={
        503: {"model": HealthOut, "description": "the database or the Milvus index is down"},
        **documented(422),
    },
)
def health(request: Request, health: Health) -> JSONResponse:
    """Database reachable, auth mode, index size, models loaded. 503 while the database is down."""
    modes: AuthModeCache = request.app.state.auth_modes
    report = health.report()
    body = HealthOut(
        status="ok" if report.serving else "unavailable",
        database=report.database,
        auth=modes.current().value if report.database else "unknown",
        index=report.index,
        models=report.models,
        crossmatch={"pending": report.crossmatch_pending},
        notifications=report.notifications,
        age_axis=AgeAxisOut.model_validate(report.age_axis) if report.age_axis else None,
    )
    return JSONResponse(body.model_dump(), status_code=200 if report.serving else 503)


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}}}, **documented(422)},
)
def metrics(request: Request, health: Health) -> PlainTextResponse:
    text = request.app.state.metrics.render(
        health.index.count, health.pending(), health.notifications()
    )
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")


@router.get("/v1/me", response_model=MeOut, responses=documented(401, 403, 422, 503))
def me(request: Request, caller: Annotated[Caller, Depends(require(Permission.READ))]) -> MeOut:
    """The caller's key name and role, what that role may do, and the thresholds in force."""
    modes: AuthModeCache = request.app.state.auth_modes
    index = request.app.state.services.index
    return MeOut(
        name=caller.key_name,
        role=caller.role,
        permissions=sorted(p.value for p in Permission if may(caller.role, p)),
        auth=modes.current().value,
        match_threshold=index.match_threshold,
        candidate_threshold=index.candidate_threshold,
        reject_note_required=request.app.state.services.review.reject_note_required,
        quality_warn_below=request.app.state.services.settings.quality_warn_below,
    )


@router.get("/v1/audit", response_model=list[AuditOut], responses=documented(401, 403, 422, 503))
def audit_trail(
    audit: Audit,
    _: Admin,
    action: AuditAction | None = None,
    key_id: Annotated[Text | None, Query(min_length=1, max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[AuditOut]:
    """The newest audit entries first: every biometric action and every write, answered
    or refused."""
    return [AuditOut.model_validate(e) for e in audit.recent(limit, action, key_id)]


@router.post(
    "/v1/admin/reindex", status_code=202, response_model=JobOut, responses=documented(401, 403, 422)
)
def start_reindex(
    jobs: Jobs,
    reindex: Reindex,
    caller: Admin,
    re_embed: Annotated[bool, Query(description="recompute every embedding")] = False,
    remove_age_axis: Annotated[
        bool,
        Query(
            description="learn the age axis of the faces held and remove it from every "
            "embedding and search (after the re-embed when both); the job fails, changing "
            "nothing, when the faces' ages vary too little for one to be learned"
        ),
    ] = False,
) -> JobOut:
    """Start a re-index (or, with re_embed=true, a re-embed; with remove_age_axis=true, the
    age axis removed) in the background."""
    params = {"re_embed": re_embed, "remove_age_axis": remove_age_axis}
    job = Job(kind=JobKind.REINDEX, params=params, caller=caller)
    started = jobs.submit(job, lambda j: reindex.run(j, re_embed, remove_age_axis))
    return JobOut(job=started.as_dict())


@router.post(
    "/v1/admin/crossmatch",
    status_code=202,
    response_model=JobOut,
    responses=documented(401, 403, 422),
)
def start_crossmatch(jobs: Jobs, crossmatch: Crossmatch, caller: Admin) -> JobOut:
    """Match every face of each register against the other, in the background (resumable)."""
    job = Job(kind=JobKind.CROSSMATCH, params={}, caller=caller)
    return JobOut(job=jobs.submit(job, crossmatch.run_batch).as_dict())


@router.post(
    "/v1/admin/notifications/retry",
    response_model=RequeuedOut,
    responses=documented(401, 403, 422, 503),
)
def retry_notifications(webhooks: Webhooks, _: Admin) -> RequeuedOut:
    """Send the parked webhook events again (after the receiver is fixed): each is due at
    once, with its attempts counted afresh."""
    return RequeuedOut(requeued=webhooks.retry_parked())


@router.get(
    "/v1/admin/jobs/{job_id}", response_model=JobOut, responses=documented(401, 403, 404, 422)
)
def get_job(
    job_id: Annotated[str, Path(min_length=1, max_length=100)], jobs: Jobs, _: Admin
) -> JobOut:
    job = jobs.get(job_id)
    if job is None:
        raise NotFound(f"no job with id {job_id} (jobs are kept in memory until restart)")
    return JobOut(job=job.as_dict())


@router.get(
    "/v1/admin/quality",
    response_model=list[RegisterQualityOut],
    responses=documented(401, 403, 422, 503),
)
def register_quality(
    quality: Qualities, _: Admin, register: Register | None = None
) -> list[RegisterQualityOut]:
    """Each register's face quality in bands, and the persons whose best photo is too low
    to search by: the ones to ask families for another photo."""
    return [RegisterQualityOut.model_validate(_plain(r)) for r in quality.registers(register)]


@router.get("/v1/admin/quality.csv", responses=CSV_RESPONSES)
def register_quality_csv(
    quality: Qualities, tables: TableExports, caller: Admin, register: Register | None = None
) -> CsvResponse:
    """The persons to ask for another photo, as a table (audited as an export)."""
    return CsvResponse.download(tables.to_ask(quality.registers(register), caller), "quality.csv")


def _plain(register: RegisterQuality) -> dict[str, object]:
    return {**vars(register), "name": register.register, "below": [vars(a) for a in register.below]}

"""What routes are given: the services of the process, one typed dependency each."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Request

from facedb.bulk.exporter import Exporter
from facedb.bulk.tables import Tables
from facedb.casework.crossmatch import CrossMatcher
from facedb.casework.review import ReviewService
from facedb.services.enrollment import EnrollmentService
from facedb.services.health import HealthService
from facedb.services.notes import NoteService
from facedb.services.persons import PersonService
from facedb.services.quality import QualityService
from facedb.services.reindex import ReindexService
from facedb.services.search import SearchService
from facedb.services.webhooks import WebhookSender
from facedb.trail.audit import AuditService
from facedb.trail.jobs import JobRegistry
from facedb.wiring import Services


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _service(name: str) -> Callable[[Request], Any]:
    def get(request: Request) -> Any:
        return getattr(services_of(request), name)

    get.__name__ = f"{name}_service"
    return get


Persons = Annotated[PersonService, Depends(_service("persons"))]
Notes = Annotated[NoteService, Depends(_service("notes"))]
Exports = Annotated[Exporter, Depends(_service("exporter"))]
TableExports = Annotated[Tables, Depends(_service("tables"))]
Enrollment = Annotated[EnrollmentService, Depends(_service("enrollment"))]
Search = Annotated[SearchService, Depends(_service("search"))]
Review = Annotated[ReviewService, Depends(_service("review"))]
Crossmatch = Annotated[CrossMatcher, Depends(_service("crossmatch"))]
Reindex = Annotated[ReindexService, Depends(_service("reindex"))]
Audit = Annotated[AuditService, Depends(_service("audit"))]
Health = Annotated[HealthService, Depends(_service("health"))]
Jobs = Annotated[JobRegistry, Depends(_service("jobs"))]
Qualities = Annotated[QualityService, Depends(_service("quality"))]
Webhooks = Annotated[WebhookSender, Depends(_service("webhooks"))]

"""The FastAPI application factory and its lifecycle."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files
from typing import Any

import uvicorn
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from api import errors
from api.auth import AuthModeCache, Gatekeeper
from api.console import pages as console
from api.errors import ErrorBoundary
from api.metrics import MeasureRequests, Metrics
from api.routes import admin, matches, persons, search
from facedb import __version__
from facedb.config import Settings, get_settings
from facedb.domain import AuthMode
from facedb.service import crossmatch
from facedb.service.context import FaceDB

log = logging.getLogger("facedb.api")
TAIL_INTERVAL_S = 1.0
SNAPSHOT_INTERVAL_S = 60.0
SWEEP_INTERVAL_S = 5.0  # cross-match faces another process enrolled and did not match
# Swagger UI and ReDoc, shipped inside the fastapi-offline package: /docs works air-gapped.
DOCS_ASSETS = files("fastapi_offline") / "static"


def create_app(settings: Settings | None = None, db: FaceDB | None = None) -> FastAPI:
    """Return the application; it loads the models and the index when it starts."""
    settings = settings or get_settings()
    facedb = db or FaceDB(settings)
    modes = AuthModeCache(facedb)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        facedb.start(load_models=True)
        _announce(modes.current(), settings)
        stop = threading.Event()
        tailer = threading.Thread(target=_tail, args=(facedb, stop), name="index-tail", daemon=True)
        tailer.start()
        try:
            yield
        finally:
            stop.set()
            tailer.join(timeout=5)
            facedb.close()

    app = FastAPI(
        title="FaceDB",
        version=__version__,
        description="Face identification database: enroll identities, search 1:N, verify 1:1.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.facedb = facedb
    app.state.metrics = Metrics()
    app.state.auth_modes = modes
    errors.install(app)
    app.include_router(persons.router)
    app.include_router(search.router)
    app.include_router(matches.router)
    app.include_router(admin.router)
    _offline_docs(app)
    console.install(app)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    # Outermost first: measure, answer unexpected errors cleanly, authenticate, route.
    app.add_middleware(Gatekeeper, db=facedb, modes=modes)
    app.add_middleware(ErrorBoundary)
    app.add_middleware(MeasureRequests, metrics=app.state.metrics)
    return app


def uvicorn_config(app: FastAPI | str, settings: Settings, **overrides: Any) -> uvicorn.Config:
    """Return the server configuration: X-Forwarded-For is FaceDB's to judge, not uvicorn's."""
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "proxy_headers": False,
        "log_level": "info",
        **overrides,
    }
    return uvicorn.Config(app, **options)


def _announce(mode: AuthMode, settings: Settings) -> None:
    if mode is AuthMode.KEYLESS_LOCAL:
        log.warning(
            "auth mode %s: no API key was ever created and the service is bound to %s, so "
            "requests without a key are admitted as admin. Create keys with "
            "`facedb keys create --role admin` before exposing the service.",
            mode,
            settings.host,
        )
    else:
        log.info("auth mode %s: every request needs an API key (bound to %s)", mode, settings.host)


def _offline_docs(app: FastAPI) -> None:
    app.mount("/docs-assets", StaticFiles(directory=str(DOCS_ASSETS)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="FaceDB API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title="FaceDB API",
            redoc_js_url="/docs-assets/redoc.standalone.js",
            redoc_favicon_url="/docs-assets/favicon.png",
            with_google_fonts=False,
        )


def _openapi(app: FastAPI) -> dict[str, Any]:
    """Return the OpenAPI document; either key header satisfies a route (not both)."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                for requirement in operation.pop("security", []):
                    operation.setdefault("security", []).extend(
                        {k: v} for k, v in requirement.items()
                    )
        app.openapi_schema = schema
    return app.openapi_schema


def _tail(db: FaceDB, stop: threading.Event) -> None:
    """Follow other processes' writes, cross-match what waits, snapshot the index now and then."""
    since_snapshot = since_sweep = 0.0
    crossmatch.sweep(db)  # whatever a process that died left waiting
    while not stop.wait(TAIL_INTERVAL_S):
        try:
            db.index.catch_up()
            since_snapshot += TAIL_INTERVAL_S
            since_sweep += TAIL_INTERVAL_S
            if since_sweep >= SWEEP_INTERVAL_S:
                crossmatch.sweep(db)
                since_sweep = 0.0
            if since_snapshot >= SNAPSHOT_INTERVAL_S:
                db.index.save_if_dirty()
                since_snapshot = 0.0
        except Exception as exc:  # the database may be down; keep tailing
            log.warning("index tail: %s", exc)

"""The FastAPI application factory and its lifecycle."""

from __future__ import annotations

import logging
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
from api.shield import SecurityHeaders, docs_policy
from facedb import __version__
from facedb.config import Settings, get_settings
from facedb.domain import AuthMode
from facedb.wiring import Services, build

log = logging.getLogger("facedb.api")
# Swagger UI and ReDoc, shipped inside the fastapi-offline package: /docs works air-gapped.
DOCS_ASSETS = files("fastapi_offline") / "static"


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    """Return the application; it loads the models and the index when it starts, and
    follows the change log and sweeps cross-matching while it runs."""
    settings = settings or (services.settings if services else get_settings())
    services = services or build(settings)
    modes = AuthModeCache(services.keys, settings.host)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services.start(load_models=True, background=True, age_axis=True)
        _announce(modes.current(), settings)
        try:
            yield
        finally:
            services.close()

    app = FastAPI(
        title="FaceDB",
        version=__version__,
        description="Face identification database: enroll identities, search 1:N, verify 1:1.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.services = services
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
    # Outermost first: measure, add the security headers, answer unexpected errors cleanly,
    # decide from the headers, route.
    app.add_middleware(Gatekeeper, services=services, modes=modes, routes=app.router.routes)
    app.add_middleware(ErrorBoundary)
    app.add_middleware(SecurityHeaders)
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
    page: dict[str, Any] = {"openapi_url": "/openapi.json", "title": "FaceDB API"}
    icon = "/docs-assets/favicon.png"

    @app.get("/docs", include_in_schema=False)
    def swagger() -> HTMLResponse:
        js, css = "/docs-assets/swagger-ui-bundle.js", "/docs-assets/swagger-ui.css"
        return docs_policy(get_swagger_ui_html(**page, swagger_js_url=js, swagger_css_url=css,
                                               swagger_favicon_url=icon))  # fmt: skip

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        js = "/docs-assets/redoc.standalone.js"
        return docs_policy(get_redoc_html(**page, redoc_js_url=js, redoc_favicon_url=icon,
                                          with_google_fonts=False))  # fmt: skip


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

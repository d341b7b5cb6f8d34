"""One JSON error envelope for every failure, the table of domain error → status, and the
ASGI boundary that turns an unexpected exception into a clean 500 (keeping the connection).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import audit_refusal
from api.envelope import envelope, status_of
from api.shield import answer, routes_of
from facedb import errors

log = logging.getLogger(__name__)
RETRY_AFTER_S = 5  # seconds a client waits before sending again a request refused with 503


def install(app: FastAPI) -> None:
    """Register the handlers that turn every expected exception into the envelope."""

    @app.exception_handler(errors.FaceDBError)
    async def domain(_: Request, exc: errors.FaceDBError) -> JSONResponse:
        status = status_of(exc)
        headers: dict[str, str] = {}
        if isinstance(exc, errors.Unauthenticated):
            headers["WWW-Authenticate"] = "Bearer"
        if status == 503:  # the database or the index is away: worth trying again shortly
            headers["Retry-After"] = str(RETRY_AFTER_S)
        extra: dict[str, Any] = {}
        if isinstance(exc, errors.InvalidInput) and exc.field:
            extra["details"] = [{"field": exc.field, "problem": exc.message}]
        return JSONResponse(envelope(exc.code, exc.message, **extra), status, headers or None)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"field": ".".join(str(p) for p in e.get("loc", ())), "problem": e.get("msg", "")}
            for e in exc.errors()
        ]
        await _audit_refusal(request, "invalid_input")
        return JSONResponse(
            envelope("invalid_input", "the request is invalid", details=details), 422
        )

    @app.exception_handler(StarletteHTTPException)
    async def http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {400: "invalid_body", 404: "not_found", 405: "method_not_allowed"}
        code = codes.get(exc.status_code, "http_error")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request))
        return JSONResponse(envelope(code, str(exc.detail)), exc.status_code, headers)


def allowed_methods(request: Request) -> list[str]:
    """Return every method some route answers at this path (for a 405's Allow header)."""
    scope = {"type": "http", "path": request.url.path, "root_path": "", "method": "\0"}
    methods: set[str] = set()
    for matcher, route in routes_of(request.app.router.routes):
        match, _ = matcher.matches(scope)
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ("GET", "HEAD"))
    return sorted(methods)


async def _audit_refusal(request: Request, code: str) -> None:
    await run_in_threadpool(audit_refusal, request, code)


class ErrorBoundary:
    """Answers an unexpected exception with the 500 envelope and keeps the connection open.

    (Starlette's own handler answers and then re-raises, and the server drops the
    keep-alive connection without saying so.)
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise  # half an answer is out; only closing the connection is honest
            await answer(send, 500, envelope("internal_error", "an internal error occurred"))

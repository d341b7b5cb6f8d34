"""One JSON error envelope for every failure, and the table of domain error → status."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from facedb import errors

log = logging.getLogger(__name__)

STATUS: dict[type[errors.FaceDBError], int] = {
    errors.EmptyImage: 400,
    errors.TruncatedImage: 400,
    errors.NotAnImage: 400,
    errors.ImageError: 400,
    errors.ImageTooLarge: 413,
    errors.UnsupportedImageFormat: 415,
    errors.NoFaceFound: 422,
    errors.MultipleFaces: 422,
    errors.InvalidInput: 422,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.Unauthenticated: 401,
    errors.Forbidden: 403,
    errors.DatabaseUnavailable: 503,
    errors.DatabaseNotMigrated: 503,
    errors.ModelsMissing: 503,
}


def status_of(error: errors.FaceDBError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def envelope(code: str, message: str, **extra: object) -> dict[str, object]:
    return {"error": {"code": code, "message": message, **extra}}


def install(app: FastAPI) -> None:
    """Register the handlers that turn every exception into the envelope."""

    @app.exception_handler(errors.FaceDBError)
    async def domain(_: Request, exc: errors.FaceDBError) -> JSONResponse:
        headers = (
            {"WWW-Authenticate": "Bearer"} if isinstance(exc, errors.Unauthenticated) else None
        )
        return JSONResponse(envelope(exc.code, exc.message), status_of(exc), headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"field": ".".join(str(p) for p in e.get("loc", ())), "problem": e.get("msg", "")}
            for e in exc.errors()
        ]
        return JSONResponse(
            envelope("invalid_input", "the request is invalid", details=details), 422
        )

    @app.exception_handler(StarletteHTTPException)
    async def http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(envelope(code, str(exc.detail)), exc.status_code)

    @app.exception_handler(OperationalError)
    async def database(_: Request, exc: OperationalError) -> JSONResponse:
        log.warning("database unavailable: %s", exc.orig)
        return JSONResponse(envelope("database_unavailable", "the database is unreachable"), 503)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return JSONResponse(envelope("internal_error", "an internal error occurred"), 500)

"""The error envelope every failure answers with, the table of domain error → status, and
how routes document them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from facedb import errors

MEANING = {
    400: "the photo cannot be read (`empty_image`, `not_an_image`, `truncated_image`) or the "
    "body cannot be parsed (`invalid_body`)",
    401: "no API key, or an unknown or revoked one: `unauthenticated`",
    403: "the key's role may not do this (`forbidden`); keyless mode reached under another "
    "host name (`host_not_allowed`) or written to from another site (`cross_site_write`)",
    404: "no such record: `not_found`",
    409: "the external_ref is taken: `conflict`",
    413: "too large: `image_too_large` (bytes or pixels), `request_too_large` (files, or a "
    "body over FACEDB_MAX_REQUEST_BYTES)",
    415: "not JPEG, PNG or WebP: `unsupported_image_format`",
    422: "invalid input (`invalid_input`, with `details` naming the fields) or, for photos, "
    "`no_face` / `multiple_faces`",
    503: "`database_unavailable`, `database_not_migrated` or `models_missing`",
}


class ErrorDetail(BaseModel):
    field: str
    problem: str


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[ErrorDetail] | None = None
    results: list[dict[str, Any]] | None = None  # an upload refused whole: each file's result


class ErrorEnvelope(BaseModel):
    """Every error answer: ``{"error": {"code", "message", ...}}``."""

    error: ErrorBody


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Return a route's ``responses`` entry for the error statuses it can answer."""
    return {s: {"model": ErrorEnvelope, "description": MEANING[s]} for s in statuses}


def envelope(code: str, message: str, **extra: object) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


STATUS: dict[type[errors.FaceDBError], int] = {
    errors.EmptyImage: 400,
    errors.TruncatedImage: 400,
    errors.NotAnImage: 400,
    errors.FileUnreadable: 400,
    errors.ImageError: 400,
    errors.ImageTooLarge: 413,
    errors.RequestTooLarge: 413,
    errors.UnsupportedImageFormat: 415,
    errors.NoFaceFound: 422,
    errors.MultipleFaces: 422,
    errors.LowQuality: 422,
    errors.InvalidInput: 422,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.Unauthenticated: 401,
    errors.Forbidden: 403,
    errors.DatabaseUnavailable: 503,
    errors.DataKeyError: 503,
    errors.IndexUnavailable: 503,
    errors.DatabaseNotMigrated: 503,
    errors.ModelsMissing: 503,
    errors.UnknownModelVersion: 503,
}


def status_of(error: errors.FaceDBError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500

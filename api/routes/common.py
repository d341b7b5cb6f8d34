"""What every route shares: the strict query string, id parameters."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query, Request
from fastapi.dependencies.models import Dependant
from fastapi.responses import PlainTextResponse
from fastapi.routing import APIRoute

from api.auth import audit_refusal
from api.envelope import documented
from facedb.errors import InvalidInput

MAX_ID = 2**63 - 1


class CsvResponse(PlainTextResponse):
    """A table for a spreadsheet, downloaded as a file."""

    media_type = "text/csv"

    @classmethod
    def download(cls, text: str, filename: str) -> CsvResponse:
        return cls(text, headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def strict_query(request: Request) -> None:
    """Refuse query parameters the route does not take: a filter is never silently ignored."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not request.query_params:
        return
    known = _query_names(route.dependant)
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        audit_refusal(request, InvalidInput.code)
        where = f"{request.method} {route.path}"
        raise InvalidInput(
            f"{where} takes no query parameter {', '.join(unknown)}"
            + (f"; it takes {', '.join(sorted(known))}" if known else "")
            + (
                " (send search and verify fields in the form body)"
                if request.method == "POST"
                else ""
            ),
            field="query." + unknown[0],
        )


def _query_names(dependant: Dependant) -> set[str]:
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


Limit = Annotated[int, Query(ge=1, le=500, description="items per page")]
Offset = Annotated[int, Query(ge=0, le=10_000_000, description="items skipped")]
PersonId = Annotated[str, Path(min_length=1, max_length=100)]
PhotoId = Annotated[str, Path(min_length=1, max_length=100)]
FaceId = Annotated[int, Path(ge=1, le=MAX_ID)]


# A CSV download's answers: the table, or an error envelope (as JSON, as every error).
CSV_RESPONSES = {
    200: {"content": {"text/csv": {}}, "description": "the table, a header row first"},
    **documented(401, 403, 422, 503),
}

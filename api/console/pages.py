"""The console's pages: one HTML shell per page, which the ES modules under static/js/ fill
from the JSON API (main.js routes; one module per page; no build step).

Why this shape: the pages need no build step and nothing from the internet (an air-gapped
site gets them from the installed package), and the API key never leaves the browser tab
(sessionStorage) nor reaches a server-side session: every call the page makes is an
ordinary API call with the key, so the server enforces each role exactly as for any client.
"""

from __future__ import annotations

import json
from functools import cache
from html import escape
from importlib.resources import files
from typing import Annotated

from fastapi import APIRouter, FastAPI, Path
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from facedb.domain import AuditAction, CaseDetail, Gender, MatchState, PersonStatus

STATIC = files("api.console") / "static"
PAGES = {
    "search": "Search",
    "persons": "Persons",
    "person": "Person",
    "review": "Review queue",
    "audit": "Audit trail",
    "quality": "Photo quality",
    "signin": "Sign in",
}
router = APIRouter(include_in_schema=False)
# The closed sets the pages offer, from the one place they are defined (facedb.domain).
VOCABULARY = json.dumps(
    {
        "statuses": [s.value for s in PersonStatus],
        "genders": [g.value for g in Gender],
        "actions": [a.value for a in AuditAction],
        "states": [s.value for s in MatchState],
        "details": {d.value: d.label for d in CaseDetail},
    }
)


@cache
def _template() -> str:
    return (STATIC / "page.html").read_text()


def _shell(page: str, **data: str) -> HTMLResponse:
    template = _template()
    data = {**data, "vocabulary": VOCABULARY}
    attributes = " ".join(f'data-{k}="{escape(v)}"' for k, v in data.items())
    html = template.replace("{title}", escape(PAGES[page])).replace("{page}", page)
    return HTMLResponse(html.replace("{data}", attributes))


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/console/search")


@router.get("/console")
def console_home() -> RedirectResponse:
    return RedirectResponse("/console/search")


@router.get("/console/persons/{person_id}")
def person_page(person_id: Annotated[str, Path(max_length=100)]) -> HTMLResponse:
    return _shell("person", person=person_id)


@router.get("/console/{page}")
def page(page: Annotated[str, Path(max_length=20)]) -> Response:
    if page not in PAGES or page == "person":
        return RedirectResponse("/console/search")
    return _shell(page)


def install(app: FastAPI) -> None:
    app.mount("/console-assets", StaticFiles(directory=str(STATIC)), name="console-assets")
    app.include_router(router)

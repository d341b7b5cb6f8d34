"""What is decided from a request's headers alone, before its body is read, and the headers
every answer carries.

- ``route_of`` / ``permission_of``: the route a request is for and the permission its
  ``require(...)`` dependency asks, so a role refusal (403) comes before the body.
- ``host_refusal`` / ``cross_site_write``: keyless local mode answers only requests
  addressed to a loopback name (DNS rebinding cannot reach it from a web page elsewhere),
  and a write without a key from another site's page is refused.
- ``CappedBody``: the request body, refused at ``FACEDB_MAX_REQUEST_BYTES`` (413) from its
  declared length, or by counting when it comes without one.
- ``SecurityHeaders``: a Content-Security-Policy the console satisfies (self only, no inline
  script), nosniff, no framing, no referrer, and ``Cache-Control: no-store`` on the API's
  answers (photos, crops, search results and person records do not belong in caches).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

from fastapi.dependencies.models import Dependant
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.envelope import envelope
from facedb.domain import Permission
from facedb.sizes import readable

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
BASE_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


# --- the route and its permission ----------------------------------------------------------
def routes_of(routes: Iterable[BaseRoute]) -> Iterator[tuple[Any, BaseRoute]]:
    """Yield (what matches a scope, the route as declared) for every route, included
    routers' routes too (FastAPI ≥ 0.165 wraps those; earlier versions list them plainly)."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # pragma: no cover - older FastAPI
        for route in routes:
            yield route, route
        return
    for context in iter_route_contexts(list(routes)):
        yield context, context.original_route


def route_of(routes: Iterable[BaseRoute], scope: Scope) -> tuple[APIRoute, dict[str, Any]] | None:
    """Return the API route that will answer this request and its path parameters."""
    for matcher, route in routes_of(routes):
        match, child = matcher.matches(scope)
        if match is Match.FULL and isinstance(route, APIRoute):
            return route, child.get("path_params", {})
    return None


def permission_of(dependant: Dependant) -> Permission | None:
    """Return the permission a route's ``require(...)`` dependency asks for, if any."""
    for sub in dependant.dependencies:
        asked = getattr(sub.call, "permission", None)
        if isinstance(asked, Permission):
            return asked
        deeper = permission_of(sub)
        if deeper is not None:
            return deeper
    return None


# --- where a request comes from ------------------------------------------------------------
def _host_name(value: str) -> str:
    """Return the name part of a Host header or an origin's netloc, lower-case."""
    return (urlsplit(f"//{value}").hostname or "").lower()


def host_refusal(scope: Scope, extra_hosts: frozenset[str]) -> str | None:
    """Return why keyless mode refuses this request's Host, or None when it is allowed."""
    host = _host_name(header(scope, b"host") or "")
    if host in LOOPBACK_NAMES or host in extra_hosts:
        return None
    return (
        f"this service runs without API keys and answers only requests addressed to "
        f"localhost, not {host or 'a missing Host'}; add the name to FACEDB_ALLOWED_HOSTS, "
        "or create keys with `facedb keys create`"
    )


def cross_site_write(scope: Scope) -> bool:
    """Whether this is a write sent by another site's page (Sec-Fetch-Site, or an Origin
    whose host and port differ from the Host the request was sent to)."""
    if scope["method"] not in UNSAFE_METHODS:
        return False
    fetch_site = header(scope, b"sec-fetch-site")
    if fetch_site in ("cross-site", "same-site"):
        return True
    origin = header(scope, b"origin")
    if origin is None:
        return False
    if origin == "null":
        return True
    return urlsplit(origin).netloc.lower() != (header(scope, b"host") or "").lower()


# --- the body, capped ----------------------------------------------------------------------
def declared_length(scope: Scope) -> int | None:
    value = header(scope, b"content-length")
    return int(value) if value is not None and value.strip().isdigit() else None


def too_large(limit: int) -> dict[str, Any]:
    return envelope(
        "request_too_large",
        f"the request is larger than {readable(limit)}, the most this service accepts at once "
        "(FACEDB_MAX_REQUEST_BYTES); send fewer or smaller photos per request",
    )


class CappedBody:
    """Passes the request through while its body stays within ``limit`` bytes; past it,
    answers 413 itself and tells the application the client has gone."""

    def __init__(self, receive: Receive, send: Send, limit: int) -> None:
        self._receive, self._send, self.limit = receive, send, limit
        self.received = 0
        self.refused = False
        self._started = False

    async def receive(self) -> Message:
        if self.refused:
            return {"type": "http.disconnect"}
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                self.refused = True
                if not self._started:
                    await answer(self._send, 413, too_large(self.limit))
                    self._started = True
                return {"type": "http.disconnect"}
        return message

    async def send(self, message: Message) -> None:
        if self.refused:
            return  # the 413 is the answer
        if message["type"] == "http.response.start":
            self._started = True
        await self._send(message)


async def answer(
    send: Send, status: int, body: dict[str, Any], extra: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    """Send a whole JSON answer."""
    payload = json.dumps(body).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        (b"connection", b"close") if status == 413 else (b"cache-control", b"no-store"),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


# --- headers on every answer ---------------------------------------------------------------
class SecurityHeaders:
    """Adds the security headers to every answer; a page that sets its own
    Content-Security-Policy (the API docs, with their inline start-up script) keeps it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = scope["path"].startswith("/v1/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in BASE_HEADERS if k not in names]
                if b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", CSP.encode()))
                if api:
                    headers = [(k, v) for k, v in headers if k.lower() != b"cache-control"]
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def docs_policy(page: HTMLResponse) -> HTMLResponse:
    """Give an API docs page (Swagger UI, ReDoc) its own policy: its inline start-up script
    allowed by hash, the inline styles and the worker ReDoc needs; still nothing from
    another host."""
    html = bytes(page.body).decode()
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'"
        for s in _INLINE_SCRIPT.findall(html)
    )
    page.headers["content-security-policy"] = (
        f"default-src 'self'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; worker-src 'self' blob:; connect-src 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    )
    return page

"""Who is calling: the API key, checked before a request body is read, and role checks.

Keys come as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. ``Gatekeeper``
(a plain ASGI middleware) authenticates every request to a non-public path and refuses what
its headers decide (role, keyless Host and cross-site writes, the person an upload names,
the body's declared size) before the application reads its body, so a 200 MB upload by a
key that may not upload is refused at its headers. ``require(permission)`` declares a
route's permission; the Gatekeeper reads it from the route, and the route checks it again.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from fastapi import Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from api.envelope import envelope, status_of
from api.shield import (
    UNSAFE_METHODS,
    CappedBody,
    answer,
    cross_site_write,
    declared_length,
    host_refusal,
    permission_of,
    route_of,
    too_large,
)
from facedb.config import Settings
from facedb.domain import AuditAction, AuthMode, Permission, Role, may
from facedb.errors import CrossSiteWrite, FaceDBError, Forbidden, HostNotAllowed, Unauthenticated
from facedb.records import Caller
from facedb.services.keys import KeyService
from facedb.wiring import Services

# Pages and assets hold no data (the console's pages fetch it with the key): no key needed.
PUBLIC_PATHS = frozenset({"/", "/v1/health", "/metrics", "/openapi.json", "/docs", "/redoc"})
PUBLIC_PREFIXES = ("/docs/", "/docs-assets/", "/console")
# The requests whose every attempt, refused or not, is written to the audit trail: the
# biometric actions and every write. (The services audit what reaches them; a request
# refused before, for its key, role or form, is audited here.)
_ID = r"[^/]+"
AUDITED: tuple[tuple[str, re.Pattern[str], AuditAction], ...] = tuple(
    (method, re.compile(path), action)
    for method, path, action in (
        ("POST", "/v1/search", AuditAction.SEARCH),
        ("POST", "/v1/verify", AuditAction.VERIFY),
        ("POST", f"/v1/matches/{_ID}/decision", AuditAction.DECISION),
        ("POST", "/v1/persons", AuditAction.PERSON_CREATE),
        ("PATCH", f"/v1/persons/{_ID}", AuditAction.PERSON_UPDATE),
        ("DELETE", f"/v1/persons/{_ID}", AuditAction.PERSON_DELETE),
        ("POST", f"/v1/persons/{_ID}/photos", AuditAction.PHOTO_UPLOAD),
        ("POST", f"/v1/persons/{_ID}/notes", AuditAction.NOTE_CREATE),
        ("GET", f"/v1/persons/{_ID}/report", AuditAction.EXPORT),
        ("DELETE", f"/v1/photos/{_ID}", AuditAction.PHOTO_DELETE),
        ("POST", "/v1/admin/reindex", AuditAction.REINDEX),
        ("POST", "/v1/admin/crossmatch", AuditAction.CROSSMATCH),
    )
)


def audited_action(method: str, path: str) -> AuditAction | None:
    """Return the audit action of a request, or None when it is not audited."""
    for audited_method, pattern, action in AUDITED:
        if method == audited_method and pattern.fullmatch(path):
            return action
    return None


def audit_refusal(request: Request, code: str) -> None:
    """Audit an audited request refused before its service saw it (never raises)."""
    action = audited_action(request.method, request.url.path)
    caller = request.scope.get("state", {}).get("caller")
    if action is not None and caller is not None:
        request.app.state.services.audit.refused(action, caller, code)


_MODE_RECHECK_S = 2.0

bearer = HTTPBearer(auto_error=False, description="an API key: `Authorization: Bearer fdb_…`")
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="an API key")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class AuthModeCache:
    """The service's auth mode, re-read every couple of seconds until keys exist.

    Keys are never deleted (only revoked), so once KEYS it stays KEYS.
    """

    def __init__(self, keys: KeyService, host: str) -> None:
        self.keys = keys
        self.loopback = is_loopback(host)
        self._mode: AuthMode | None = None
        self._checked_at = -1e9

    def current(self) -> AuthMode:
        if self._mode is AuthMode.KEYS:
            return self._mode
        now = time.monotonic()
        if self._mode is None or now - self._checked_at > _MODE_RECHECK_S:
            self._mode = self.keys.auth_mode(self.loopback)
            self._checked_at = now
        return self._mode


def client_address(scope: Scope, settings: Settings) -> str | None:
    """Return the socket peer, or what X-Forwarded-For says when the peer is a trusted proxy.

    The header is read right to left, skipping trusted proxies: the first other address is
    the client (addresses further left were written by the client and prove nothing).
    """
    peer = scope.get("client")
    address = peer[0] if peer else None
    networks = settings.proxy_networks
    if address is None or not networks or not _trusted(address, networks):
        return address
    header = next((v for k, v in scope["headers"] if k == b"x-forwarded-for"), None)
    if header is None:
        return address
    for hop in reversed([h.strip() for h in header.decode("latin-1").split(",") if h.strip()]):
        if not _trusted(hop, networks):
            return hop
    return address


def _trusted(address: str, networks: list[Any]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def secret_from(scope: Scope) -> str | None:
    headers = {k: v for k, v in scope["headers"] if k in (b"authorization", b"x-api-key")}
    authorization = headers.get(b"authorization", b"").decode("latin-1")
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip() or None
    return headers.get(b"x-api-key", b"").decode("latin-1").strip() or None


class Gatekeeper:
    """Decides each request from its headers before the application reads its body: the key
    (401; a database outage is 503, never 401), in keyless mode the Host and the site a
    write comes from (403), the role the route asks (403), the person an upload names
    (404), the declared body size (413); then caps the body as it is read."""

    def __init__(
        self, app: ASGIApp, services: Services, modes: AuthModeCache, routes: list[BaseRoute]
    ) -> None:
        self.app = app
        self.services = services
        self.modes = modes
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        settings = self.services.settings
        client = client_address(scope, settings)
        scope.setdefault("state", {})
        if "\x00" in path or "\x00" in unquote(scope.get("query_string", b"").decode("latin-1")):
            body = envelope("invalid_input", "the URL contains a NUL character")
            await answer(send, 422, body)
            return
        if not _public(path):
            try:
                caller = await run_in_threadpool(self._admit, scope, client)
            except FaceDBError as exc:
                extra = [(b"www-authenticate", b"Bearer")] if status_of(exc) == 401 else []
                if status_of(exc) == 503:
                    extra.append((b"retry-after", b"5"))
                await answer(send, status_of(exc), envelope(exc.code, exc.message), extra)
                return
            scope["state"]["caller"] = caller
        length = declared_length(scope)
        if length is not None and length > settings.max_request_bytes:
            await answer(send, 413, too_large(settings.max_request_bytes))
            return
        capped = CappedBody(receive, send, settings.max_request_bytes)
        try:
            await self.app(scope, capped.receive, capped.send)
        except Exception:
            if not capped.refused:  # the application saw the client "go" after the 413
                raise

    def _admit(self, scope: Scope, client: str | None) -> Caller:
        """Authenticate, then refuse what the headers already decide (audited)."""
        caller = self._authenticate(scope, client)
        action = audited_action(scope["method"], scope["path"])
        try:
            if caller.key_id is None:  # keyless local mode
                refusal = host_refusal(scope, self.services.settings.extra_hosts)
                if refusal is not None:
                    raise HostNotAllowed(refusal)
                if cross_site_write(scope):
                    raise CrossSiteWrite(
                        "a write from another site's page is refused: this service runs "
                        "without API keys, so only its own console may write"
                    )
            found = route_of(self.routes, scope)
            if found is not None:
                route, params = found
                asked = permission_of(route.dependant)
                if asked is not None and not may(caller.role, asked):
                    raise Forbidden(f"the {caller.role} role may not do this ({asked})")
                if scope["method"] in UNSAFE_METHODS and "person_id" in params:
                    self.services.persons.get(str(params["person_id"]))  # NotFound: 404
        except FaceDBError as exc:
            if action is not None:
                self.services.audit.refused(action, caller, exc.code)
            raise
        return caller

    def _authenticate(self, scope: Scope, client: str | None) -> Caller:
        secret = secret_from(scope)
        action = audited_action(scope["method"], scope["path"])
        try:
            if secret is None:
                if self.modes.current() is AuthMode.KEYLESS_LOCAL:
                    return Caller(
                        key_id=None, key_name="local (no keys)", role=Role.ADMIN, client=client
                    )
                raise Unauthenticated("an API key is required (Authorization: Bearer <key>)")
            key = self.services.keys.authenticate(secret)
        except Unauthenticated as exc:
            if action is not None:
                nobody = Caller(key_id=None, key_name=None, role=None, client=client)
                self.services.audit.refused(action, nobody, exc.code)
            raise
        return Caller(key_id=key.id, key_name=key.name, role=key.role, client=client)


def _public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def caller_of(request: Request) -> Caller:
    caller: Caller | None = request.scope.get("state", {}).get("caller")
    if caller is None:  # Gatekeeper runs on every non-public path; this is a wiring error
        raise Unauthenticated("an API key is required (Authorization: Bearer <key>)")
    return caller


def require(permission: Permission) -> Callable[..., Caller]:
    """Return a dependency that checks the authenticated caller holds ``permission``."""

    def check(
        request: Request,
        _bearer: HTTPAuthorizationCredentials | None = Security(bearer),  # noqa: B008
        _header: str | None = Security(api_key_header),
    ) -> Caller:
        caller = caller_of(request)
        if not may(caller.role, permission):
            audit_refusal(request, Forbidden.code)
            raise Forbidden(f"the {caller.role} role may not do this ({permission})")
        return caller

    check.permission = permission  # type: ignore[attr-defined]  # read by the Gatekeeper
    return check

"""API-key authentication and role checks.

Roles: ``admin`` (everything), ``enroller`` (persons and photos, read), ``searcher``
(search, verify, read persons). Keys come as ``Authorization: Bearer <key>`` or
``X-API-Key: <key>``. With no active key in the database and the service bound to a
loopback address, requests without a key are admitted as a local admin ("keyless local
mode", announced at start-up); anywhere else a key is required.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable

from fastapi import Request

from facedb.errors import Forbidden, Unauthenticated
from facedb.service import keys
from facedb.service.audit import Caller
from facedb.service.context import FaceDB

READ, ENROLL, SEARCH, ADMIN = "read", "enroll", "search", "admin"
GRANTS = {
    "admin": {READ, ENROLL, SEARCH, ADMIN},
    "enroller": {READ, ENROLL},
    "searcher": {READ, SEARCH},
}
_KEYS_CACHE_S = 2.0


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class KeylessPolicy:
    """Whether keyless local mode applies now (re-checked every couple of seconds)."""

    def __init__(self, db: FaceDB) -> None:
        self.db = db
        self.loopback = is_loopback(db.settings.host)
        self._checked_at = -1e9
        self._no_keys = False

    def allows(self) -> bool:
        if not self.loopback:
            return False
        now = time.monotonic()
        if now - self._checked_at > _KEYS_CACHE_S:
            self._no_keys = keys.active_key_count(self.db) == 0
            self._checked_at = now
        return self._no_keys


def secret_from(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return request.headers.get("x-api-key") or None


def require(permission: str) -> Callable[[Request], Caller]:
    """Return a dependency that authenticates the caller and checks one permission."""

    def check(request: Request) -> Caller:
        db: FaceDB = request.app.state.facedb
        policy: KeylessPolicy = request.app.state.keyless
        client = request.client.host if request.client else None
        secret = secret_from(request)
        if secret is None:
            if policy.allows():
                return Caller(None, "local (no keys)", "admin", client)
            raise Unauthenticated("an API key is required (Authorization: Bearer <key>)")
        key = keys.authenticate(db, secret)
        if permission not in GRANTS.get(key.role, set()):
            raise Forbidden(f"the {key.role} role may not do this ({permission})")
        return Caller(key.id, key.name, key.role, client)

    return check

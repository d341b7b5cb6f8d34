"""API keys: created once (the secret is shown once), stored as sha256, checked per request.

Keyless local mode admits requests without a key as admin. It holds only while no key was
ever created in this database and the service is bound to a loopback address: once a key
exists, revoking every key does not bring it back.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from facedb.domain import AuditAction, AuthMode, Role
from facedb.errors import Unauthenticated
from facedb.records import Caller, KeyRecord
from facedb.store.unit import Store
from facedb.trail.audit import LOCAL, AuditService

KEY_PREFIX = "fdb_"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class KeyService:
    store: Store
    audit: AuditService

    def create(self, role: Role, name: str, caller: Caller = LOCAL) -> tuple[KeyRecord, str]:
        """Return the stored key and its secret (which is not stored); audited."""
        with self.audit.audited(AuditAction.KEY_CREATE, caller) as trail:
            secret = KEY_PREFIX + secrets.token_urlsafe(32)
            with self.store.unit() as unit:
                key = unit.keys.add(name, Role(role), hash_secret(secret), secret[:10])
            trail.results = [{"key_id": key.id, "name": name, "role": key.role.value}]
        return key, secret

    def all(self) -> list[KeyRecord]:
        with self.store.unit() as unit:
            return unit.keys.all()

    def revoke(self, key_id: str, caller: Caller = LOCAL) -> KeyRecord:
        """Revoke a key for good (audited)."""
        with self.audit.audited(AuditAction.KEY_REVOKE, caller) as trail:
            with self.store.unit() as unit:
                key = unit.keys.revoke(key_id, datetime.now(UTC))
            trail.results = [{"key_id": key.id, "name": key.name}]
        return key

    def authenticate(self, secret: str) -> KeyRecord:
        """Return the active key for a secret, or raise Unauthenticated."""
        with self.store.unit() as unit:
            key = unit.keys.by_hash(hash_secret(secret))
        if key is None or key.revoked_at is not None:
            raise Unauthenticated("the API key is unknown or revoked")
        return key

    def auth_mode(self, loopback: bool) -> AuthMode:
        """Return KEYLESS_LOCAL while no key was ever created and the bind is loopback."""
        if not loopback:
            return AuthMode.KEYS
        with self.store.unit() as unit:
            ever = unit.keys.ever_created()
        return AuthMode.KEYS if ever else AuthMode.KEYLESS_LOCAL

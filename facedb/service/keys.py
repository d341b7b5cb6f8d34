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

from sqlalchemy import func, select

from facedb.domain import AuthMode, Role
from facedb.errors import InvalidInput, NotFound, Unauthenticated
from facedb.service.context import FaceDB
from facedb.service.records import utc
from facedb.store.db import transaction
from facedb.store.models import ApiKey

KEY_PREFIX = "fdb_"


@dataclass(frozen=True)
class KeyRecord:
    id: str
    name: str
    role: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, row: ApiKey) -> KeyRecord:
        return cls(
            id=row.id,
            name=row.name,
            role=row.role,
            prefix=row.prefix,
            created_at=utc(row.created_at),
            revoked_at=utc(row.revoked_at) if row.revoked_at else None,
        )


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(db: FaceDB, role: str, name: str) -> tuple[KeyRecord, str]:
    """Return the stored key and its secret (which is not stored)."""
    if role not in Role.__members__.values():
        raise InvalidInput(f"unknown role {role!r}; choose one of {', '.join(Role)}", "role")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    with transaction(db.sessions) as session:
        key = ApiKey(name=name, role=role, key_hash=hash_secret(secret), prefix=secret[:10])
        session.add(key)
        session.flush()
        return KeyRecord.of(key), secret


def list_keys(db: FaceDB) -> list[KeyRecord]:
    with transaction(db.sessions) as session:
        rows = session.execute(select(ApiKey).order_by(ApiKey.created_at)).scalars()
        return [KeyRecord.of(row) for row in rows]


def revoke_key(db: FaceDB, key_id: str) -> None:
    with transaction(db.sessions) as session:
        key = session.get(ApiKey, key_id)
        if key is None:
            raise NotFound(f"no API key with id {key_id}")
        key.revoked_at = datetime.now(UTC)


def authenticate(db: FaceDB, secret: str) -> KeyRecord:
    """Return the active key for a secret, or raise Unauthenticated."""
    with transaction(db.sessions) as session:
        key = session.execute(
            select(ApiKey).where(ApiKey.key_hash == hash_secret(secret))
        ).scalar_one_or_none()
        if key is None or key.revoked_at is not None:
            raise Unauthenticated("the API key is unknown or revoked")
        return KeyRecord.of(key)


def auth_mode(db: FaceDB, loopback: bool) -> AuthMode:
    """Return KEYLESS_LOCAL while no key was ever created and the bind is loopback."""
    if not loopback:
        return AuthMode.KEYS
    with transaction(db.sessions) as session:
        ever = int(session.execute(select(func.count(ApiKey.id))).scalar_one())
    return AuthMode.KEYLESS_LOCAL if ever == 0 else AuthMode.KEYS

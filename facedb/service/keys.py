"""API keys: created once (the secret is shown once), stored as sha256, checked per request."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime

from sqlalchemy import func, select

from facedb.errors import InvalidInput, NotFound, Unauthenticated
from facedb.service.context import FaceDB
from facedb.store.db import transaction
from facedb.store.models import ApiKey

ROLES = ("admin", "enroller", "searcher")
KEY_PREFIX = "fdb_"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(db: FaceDB, role: str, name: str) -> tuple[ApiKey, str]:
    """Return the stored key and its secret (which is not stored)."""
    if role not in ROLES:
        raise InvalidInput(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    with transaction(db.sessions) as session:
        key = ApiKey(name=name, role=role, key_hash=hash_secret(secret), prefix=secret[:10])
        session.add(key)
    return key, secret


def list_keys(db: FaceDB) -> list[ApiKey]:
    with transaction(db.sessions) as session:
        return list(session.execute(select(ApiKey).order_by(ApiKey.created_at)).scalars())


def revoke_key(db: FaceDB, key_id: str) -> None:
    with transaction(db.sessions) as session:
        key = session.get(ApiKey, key_id)
        if key is None:
            raise NotFound(f"no API key with id {key_id}")
        key.revoked_at = datetime.now(UTC)


def authenticate(db: FaceDB, secret: str) -> ApiKey:
    """Return the active key for a secret, or raise Unauthenticated."""
    with transaction(db.sessions) as session:
        key = session.execute(
            select(ApiKey).where(ApiKey.key_hash == hash_secret(secret))
        ).scalar_one_or_none()
    if key is None or key.revoked_at is not None:
        raise Unauthenticated("the API key is unknown or revoked")
    return key


def active_key_count(db: FaceDB) -> int:
    with transaction(db.sessions) as session:
        query = select(func.count(ApiKey.id)).where(ApiKey.revoked_at.is_(None))
        return int(session.execute(query).scalar_one())

"""API keys, stored as the sha256 of their secret."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from facedb.domain import Role
from facedb.records import KeyRecord
from facedb.store.models import ApiKey
from facedb.store.rows import get_or_404


class KeyRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, name: str, role: Role, key_hash: str, prefix: str) -> KeyRecord:
        key = ApiKey(name=name, role=role, key_hash=key_hash, prefix=prefix)
        self._session.add(key)
        self._session.flush()
        return KeyRecord.model_validate(key)

    def all(self) -> list[KeyRecord]:
        rows = self._session.execute(select(ApiKey).order_by(ApiKey.created_at)).scalars()
        return [KeyRecord.model_validate(row) for row in rows]

    def by_hash(self, key_hash: str) -> KeyRecord | None:
        row = self._session.execute(
            select(ApiKey).where(ApiKey.key_hash == key_hash)
        ).scalar_one_or_none()
        return KeyRecord.model_validate(row) if row is not None else None

    def revoke(self, key_id: str, at: datetime) -> KeyRecord:
        key = get_or_404(self._session, ApiKey, key_id, "API key")
        key.revoked_at = at
        return KeyRecord.model_validate(key)

    def ever_created(self) -> bool:
        """Whether any key was ever created (revoked ones count: keys are never deleted)."""
        return bool(self._session.execute(select(func.count(ApiKey.id))).scalar_one())

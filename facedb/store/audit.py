"""The audit trail: one row per audited action, answered or refused."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from facedb.domain import AuditAction
from facedb.records import AuditRecord, Caller
from facedb.store.models import AuditEntry


class AuditRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(
        self,
        action: AuditAction,
        caller: Caller,
        faces_found: int,
        results: list[Any],
        took_ms: float,
    ) -> None:
        self._session.add(
            AuditEntry(
                action=action,
                key_id=caller.key_id,
                key_name=caller.key_name,
                client=caller.client,
                faces_found=faces_found,
                results=results,
                took_ms=took_ms,
            )
        )

    def recent(
        self, limit: int, action: AuditAction | None = None, key_id: str | None = None
    ) -> list[AuditRecord]:
        """Return the newest entries first."""
        query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
        if action:
            query = query.where(AuditEntry.action == action)
        if key_id:
            query = query.where(AuditEntry.key_id == key_id)
        return [AuditRecord.model_validate(row) for row in self._session.execute(query).scalars()]

"""The audit trail of every biometric search and verification."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from facedb.service.context import FaceDB
from facedb.store.db import transaction
from facedb.store.models import AuditEntry


@dataclass(frozen=True)
class Caller:
    """Who made a request: the key (None in keyless local mode) and the client address."""

    key_id: str | None
    key_name: str | None
    role: str
    client: str | None


def record(
    db: FaceDB,
    action: str,
    caller: Caller,
    faces_found: int,
    results: list[Any],
    took_ms: float,
) -> None:
    with transaction(db.sessions) as session:
        session.add(
            AuditEntry(
                action=action,
                key_id=caller.key_id,
                key_name=caller.key_name,
                client=caller.client,
                faces_found=faces_found,
                results=results,
                took_ms=round(took_ms, 2),
            )
        )


def recent(db: FaceDB, limit: int = 50, action: str | None = None) -> list[AuditEntry]:
    with transaction(db.sessions) as session:
        query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
        if action:
            query = query.where(AuditEntry.action == action)
        return list(session.execute(query).scalars())

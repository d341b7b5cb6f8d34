"""The audit trail: every biometric search and verification, answered or refused."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from facedb.domain import AuditAction
from facedb.errors import FaceDBError
from facedb.service.context import FaceDB
from facedb.service.records import utc
from facedb.store.db import transaction
from facedb.store.models import AuditEntry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Caller:
    """Who made a request: the key (None in keyless local mode or when refused) and address."""

    key_id: str | None
    key_name: str | None
    role: str | None
    client: str | None


LOCAL = Caller(None, "local", "admin", None)  # a caller in this process (scripts, tests)


@dataclass
class Trail:
    """What an audited action found, filled in by the action as it goes."""

    faces_found: int = 0
    results: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class AuditRecord:
    id: int
    at: datetime
    action: str
    key_id: str | None
    key_name: str | None
    client: str | None
    faces_found: int
    results: list[Any]
    took_ms: float

    @classmethod
    def of(cls, row: AuditEntry) -> AuditRecord:
        return cls(
            id=int(row.id),
            at=utc(row.at),
            action=row.action,
            key_id=row.key_id,
            key_name=row.key_name,
            client=row.client,
            faces_found=row.faces_found,
            results=list(row.results or []),
            took_ms=row.took_ms,
        )

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "at": self.at.isoformat()}


@contextmanager
def audited(db: FaceDB, action: AuditAction, caller: Caller) -> Iterator[Trail]:
    """Audit the action in the block: what it found, or the error that refused it.

    A success that cannot be written to the trail fails (no unaudited answer leaves the
    service); a refusal that cannot be written is logged, and the refusal stands.
    """
    trail = Trail()
    start = time.perf_counter()
    try:
        yield trail
    except FaceDBError as exc:
        refused(db, action, caller, exc.code, (time.perf_counter() - start) * 1000)
        raise
    record(db, action, caller, trail.faces_found, trail.results, time.perf_counter() - start)


def record(
    db: FaceDB,
    action: AuditAction,
    caller: Caller,
    faces_found: int,
    results: list[Any],
    took_s: float,
) -> None:
    with transaction(db.sessions) as session:
        session.add(
            AuditEntry(
                action=str(action),
                key_id=caller.key_id,
                key_name=caller.key_name,
                client=caller.client,
                faces_found=faces_found,
                results=results,
                took_ms=round(took_s * 1000, 2),
            )
        )


def refused(
    db: FaceDB, action: AuditAction, caller: Caller, code: str, took_ms: float = 0.0
) -> None:
    """Audit an attempt refused with an error code; never raises."""
    try:
        record(db, action, caller, 0, [{"error": code}], took_ms / 1000)
    except FaceDBError as failure:  # the database may be why the request failed
        log.warning("could not audit a refused %s (%s): %s", action, code, failure.message)


def recent(
    db: FaceDB, limit: int = 50, action: AuditAction | None = None, key_id: str | None = None
) -> list[AuditRecord]:
    """Return the newest entries first."""
    with transaction(db.sessions) as session:
        query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
        if action:
            query = query.where(AuditEntry.action == str(action))
        if key_id:
            query = query.where(AuditEntry.key_id == key_id)
        return [AuditRecord.of(row) for row in session.execute(query).scalars()]

"""The audit trail: every biometric action and every write, answered or refused."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from facedb.domain import AuditAction, Role
from facedb.errors import FaceDBError
from facedb.records import AuditRecord, Caller
from facedb.store.unit import Store, Unit

log = logging.getLogger(__name__)


# A caller in this process: the command line, scripts, the evaluation.
LOCAL = Caller(key_id=None, key_name="local", role=Role.ADMIN, client=None)


@dataclass
class Trail:
    """What an audited action found, filled in by the action as it goes."""

    faces_found: int = 0
    results: list[Any] = field(default_factory=list)
    # Written in the same transaction as the entry of a success (what the answer settles).
    along: Callable[[Unit], None] | None = None


@dataclass(frozen=True)
class AuditService:
    store: Store

    @contextmanager
    def audited(self, action: AuditAction, caller: Caller) -> Iterator[Trail]:
        """Audit the action in the block: what it found, or the error that refused it.

        A success that cannot be written to the trail fails (no unaudited answer leaves the
        service); a refusal that cannot be written is logged, and the refusal stands.
        """
        trail = Trail()
        start = time.perf_counter()
        try:
            yield trail
        except FaceDBError as exc:
            self.refused(action, caller, exc.code, (time.perf_counter() - start) * 1000)
            raise
        took_s = time.perf_counter() - start
        self.record(action, caller, trail.faces_found, trail.results, took_s, trail.along)

    def record(
        self,
        action: AuditAction,
        caller: Caller,
        faces_found: int,
        results: list[Any],
        took_s: float,
        along: Callable[[Unit], None] | None = None,
    ) -> None:
        with self.store.unit() as unit:
            unit.audit.add(action, caller, faces_found, results, round(took_s * 1000, 2))
            if along is not None:
                along(unit)

    def refused(self, action: AuditAction, caller: Caller, code: str, took_ms: float = 0.0) -> None:
        """Audit an attempt refused with an error code; never raises."""
        try:
            self.record(action, caller, 0, [{"error": code}], took_ms / 1000)
        except FaceDBError as failure:  # the database may be why the request failed
            log.warning("could not audit a refused %s (%s): %s", action, code, failure.message)

    def recent(
        self, limit: int = 50, action: AuditAction | None = None, key_id: str | None = None
    ) -> list[AuditRecord]:
        """Return the newest entries first, each with the names of the persons it names."""
        with self.store.unit() as unit:
            entries = unit.audit.recent(limit, action, key_id)
            named = sorted({p for entry in entries for p in _person_ids(entry.results)})
            persons = unit.persons.many(named)
        return [
            entry.model_copy(update={"names": {p: persons[p].name for p in
                                               _person_ids(entry.results) if p in persons}})
            for entry in entries
        ]  # fmt: skip


def _person_ids(value: Any) -> set[str]:
    """Return the person ids an entry's results hold (under keys ending in ``person_id``,
    and ``report``: the person whose case report was made)."""
    if isinstance(value, list):
        return set().union(*(_person_ids(item) for item in value)) if value else set()
    if isinstance(value, dict):
        found = {
            v
            for k, v in value.items()
            if (k.endswith("person_id") or k == "report") and isinstance(v, str)
        }
        return found.union(*(_person_ids(v) for v in value.values() if isinstance(v, list | dict)))
    return set()

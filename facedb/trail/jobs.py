"""Background jobs (re-index) with progress a client can poll."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from facedb.domain import JobKind, JobState
from facedb.records import Caller
from facedb.trail.audit import LOCAL

log = logging.getLogger(__name__)


@dataclass
class Job:
    """One job's state. ``progress`` is done / total (0 when total is unknown)."""

    kind: JobKind
    params: dict[str, Any]
    caller: Caller = LOCAL  # who started it: its audit entry names them
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    state: JobState = JobState.QUEUED
    total: int = 0
    done: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    started_at: datetime | None = None
    finished_at: datetime | None = None

    def advance(self, n: int = 1) -> None:
        self.done += n

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind.value,
            "params": self.params,
            "state": self.state.value,
            "progress": round(self.done / self.total, 4) if self.total else 0.0,
            "total": self.total,
            "done": self.done,
            "counts": self.counts,
            "errors": self.errors[-50:],
            "created_at": self.created_at.isoformat(),
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }


class JobRegistry:
    """Runs jobs on background threads, one of each kind at a time."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def submit(self, job: Job, work: Callable[[Job], None]) -> Job:
        """Start ``work(job)`` in the background, unless a job of that kind is running."""
        with self._lock:
            for other in self._jobs.values():
                if other.kind == job.kind and other.state.active:
                    return other
            self._jobs[job.id] = job
        threading.Thread(
            target=run_job, args=(job, work), name=f"job-{job.kind}", daemon=True
        ).start()
        return job


def run_job(job: Job, work: Callable[[Job], None]) -> None:
    """Run ``work(job)`` in this thread, recording state, timing and failure."""
    job.state = JobState.RUNNING
    job.started_at = datetime.now(UTC)
    try:
        work(job)
        job.state = JobState.SUCCEEDED
    except Exception as exc:
        log.exception("job %s (%s) failed", job.id, job.kind)
        job.errors.append(f"{type(exc).__name__}: {exc}")
        job.state = JobState.FAILED
    finally:
        job.finished_at = datetime.now(UTC)

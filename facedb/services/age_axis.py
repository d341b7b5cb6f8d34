"""The age axis served by default: the service learns it from the faces it holds, removes it
from every embedding and search once they pass the guard, and learns it again as they grow.

Measured at the size of a register (docs/ACCURACY.md, "Register scale"): among 5,000
strangers removing it lifts cross-age rank-10 by several points, more than in galleries of
100, so a unit that never heard of it should have it. ``FACEDB_AGE_AXIS=off`` leaves it to
``facedb reindex --remove-age-axis``.

When: after a bulk import and, in a serving process, about once a minute (the background
work). The face count is the index's (no query). An attempt is made when the faces held
reach the guard's minimum, again after a refusal once they have grown by
``age_axis_retry_growth``, and once an axis is served, again (a re-embed, since the faces'
raw embeddings are gone) once they have grown by ``age_axis_relearn_growth`` since it was
learned. The last attempt and a lease live in the database (``age_axis_attempts``), so of
several processes one runs it and every one says the same in ``/v1/health``. Once it is
learned both registers are cross-matched again, so the review queue gains what the new
embeddings find.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import uuid
from dataclasses import dataclass
from datetime import timedelta

from facedb.casework.crossmatch import CrossMatcher
from facedb.config import Settings
from facedb.domain import AxisMode, AxisOutcome, JobKind
from facedb.errors import AgeAxisRefused, FaceDBError
from facedb.index.face_index import FaceIndex
from facedb.pipeline.age_axis import AxisGuard
from facedb.pipeline.base import Analyzer
from facedb.records import AgeAxis, AxisAttempt
from facedb.services.reindex import ReindexService
from facedb.store.unit import Store
from facedb.trail.jobs import Job, JobRegistry

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=10)  # renewed while the job runs (``renew``)


@dataclass(frozen=True)
class AxisStatus:
    """Whether the age axis is removed from the served embeddings, and why (not)."""

    mode: AxisMode
    on: bool
    reason: str
    faces: int  # faces indexed now
    learned_from: int | None  # the faces the served axis was learned from
    next_attempt_at: int | None  # the face count at which the service tries (again)
    running: bool  # a process is learning it now

    @property
    def due(self) -> bool:
        return (
            self.mode is AxisMode.AUTO
            and not self.running
            and self.next_attempt_at is not None
            and self.faces >= self.next_attempt_at
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "mode": self.mode.value,
            "on": self.on,
            "reason": self.reason,
            "faces": self.faces,
            "learned_from": self.learned_from,
            "next_attempt_at": self.next_attempt_at,
            "running": self.running,
        }


class AgeAxisPolicy:
    """Decides when the service learns its age axis, and runs the re-index job that does."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        index: FaceIndex,
        analyzer: Analyzer,
        reindex: ReindexService,
        crossmatch: CrossMatcher,
        guard: AxisGuard | None = None,
    ) -> None:
        self.mode = settings.age_axis
        self.retry_growth = settings.age_axis_retry_growth
        self.relearn_growth = settings.age_axis_relearn_growth
        self.store, self.index, self.analyzer, self.reindex = store, index, analyzer, reindex
        self.crossmatch = crossmatch
        self.guard = guard or AxisGuard()
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._job: Job | None = None

    def status(self) -> AxisStatus:
        """What is served and when the service tries next (one read of one row)."""
        with self.store.unit() as unit:
            last = unit.axis_attempts.last()
            running = unit.axis_attempts.running() is not None
        served = self.analyzer.recipes.of(self.index.model_version).axis
        faces = self.index.count
        if self.mode is AxisMode.OFF:
            return self._off(served, faces, running)
        if served is not None:
            again = math.ceil(served.faces * (1 + self.relearn_growth))
            reason = (
                f"removed: learned from {served.faces} faces ({served.children} children, "
                f"{served.adults} adults); learned again (a re-embed) once the database holds "
                f"{again} faces"
            )
            return AxisStatus(self.mode, True, reason, faces, served.faces, again, running)
        return self._waiting(last, faces, running)

    def _off(self, served: AgeAxis | None, faces: int, running: bool) -> AxisStatus:
        if served is None:
            reason = (
                "turned off (FACEDB_AGE_AXIS=off): `facedb reindex --remove-age-axis` removes it"
            )
        else:
            reason = (
                f"turned off (FACEDB_AGE_AXIS=off), but the axis learned from {served.faces} "
                "faces is still removed: `facedb reindex --re-embed` serves the faces with it"
            )
        return AxisStatus(self.mode, served is not None, reason, faces,
                          served.faces if served else None, None, running)  # fmt: skip

    def _waiting(self, last: AxisAttempt | None, faces: int, running: bool) -> AxisStatus:
        first = self.guard.min_faces
        if last is None or last.outcome is AxisOutcome.LEARNED:
            reason = (
                f"not learned yet: it is learned once the database holds {first} faces "
                f"with an age, children and adults among them ({faces} faces now)"
            )
            return AxisStatus(self.mode, False, reason, faces, None, first, running)
        again = max(first, math.ceil(last.faces * (1 + self.retry_growth)))
        said = "refused" if last.outcome is AxisOutcome.REFUSED else "failed"
        reason = (
            f"not removed: {said} when tried at {last.faces} faces ({last.reason}); tried "
            f"again once the database holds {again} faces"
        )
        return AxisStatus(self.mode, False, reason, faces, None, again, running)

    # --- running it -------------------------------------------------------------------------
    def consider(self, job: Job | None = None) -> AxisStatus:
        """Learn (or learn again) the age axis in this thread, as ``job`` (a re-index job)
        if given, if it is due and no other process is at it; return the status after."""
        status = self.status()
        if not status.due:
            return status
        with self.store.unit() as unit:
            if not unit.axis_attempts.claim(self.holder, LEASE):
                return self.status()
        # Learning it again re-embeds first (the raw embeddings are gone); should the faces
        # then be refused, the axis served before is removed again rather than none.
        served = self.analyzer.recipes.of(self.index.model_version).axis
        job = job or Job(kind=JobKind.REINDEX, params={})
        relearn = served is not None
        job.params.update({"remove_age_axis": True, "re_embed": relearn, "automatic": True})
        self._job = job
        outcome, reason = AxisOutcome.FAILED, ""
        done = threading.Event()
        renewing = threading.Thread(target=self._renew, args=(done,), daemon=True)
        renewing.start()
        try:
            self.reindex.run(job, re_embed=relearn, remove_age_axis=True, guard=self.guard,
                             fallback=served)  # fmt: skip
            outcome = AxisOutcome.LEARNED
            self._match_again()
        except AgeAxisRefused as exc:
            outcome, reason = AxisOutcome.REFUSED, exc.message
        except Exception as exc:  # recorded, and tried again as a refusal is
            reason = str(exc) or type(exc).__name__
            log.exception("learning the age axis failed")
        finally:
            done.set()
            renewing.join()
            self._job = None
            with self.store.unit() as unit:
                unit.axis_attempts.finish(self.holder, status.faces, outcome, reason)
        log.info("age axis at %d faces: %s %s", status.faces, outcome.value, reason)
        return self.status()

    def _match_again(self) -> None:
        """Cross-match both registers again with the new embeddings: pairs already queued
        stay (decisions kept), and pairs the axis lets through are added."""
        with self.store.unit() as unit:
            if not unit.registers.count():
                return
        self.crossmatch.run_batch(Job(kind=JobKind.CROSSMATCH, params={"automatic": True}))

    def _renew(self, done: threading.Event) -> None:
        """Keep this process's lease while its job runs (a job at 10^5 faces takes hours);
        a process killed stops renewing, and another takes over once the lease runs out."""
        while not done.wait(LEASE.total_seconds() / 3):
            try:
                with self.store.unit() as unit:
                    unit.axis_attempts.claim(self.holder, LEASE)
            except FaceDBError as exc:  # the database is down: the job will say so
                log.warning("could not renew the age axis lease: %s", exc.message)

    def tick(self, jobs: JobRegistry) -> None:
        """From the background work: start the job on the job registry's thread if it is
        due and this process is not at it already."""
        if self._job is None and self.status().due:
            job = Job(kind=JobKind.REINDEX, params={"automatic": True})
            jobs.submit(job, self.run)

    def run(self, job: Job) -> None:
        """``consider`` as the job registry runs work."""
        self.consider(job)

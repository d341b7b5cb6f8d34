"""The batch cross-match's cursor: which register and face a run resumes after."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from facedb.domain import Register
from facedb.store.models import CrossmatchRun, utcnow


class CrossmatchRuns:
    """The one batch run's row, locked while a unit holds it."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def start(self) -> tuple[Register, int]:
        """Return the register and face id the batch run resumes after (a finished run
        starts over)."""
        run = self._run()
        if run.finished_at is not None:
            run.register, run.after_face_id = Register.MISSING, 0
            run.finished_at, run.started_at = None, utcnow()
        return Register(run.register), int(run.after_face_id)

    def advance(self, register: Register, after_face_id: int) -> None:
        run = self._run()
        run.register, run.after_face_id = register, after_face_id

    def finish(self) -> None:
        self._run().finished_at = utcnow()

    def _run(self) -> CrossmatchRun:
        run = self._session.execute(
            select(CrossmatchRun).where(CrossmatchRun.id == 1).with_for_update()
        ).scalar_one_or_none()
        if run is None:
            run = CrossmatchRun(id=1, register=Register.MISSING, after_face_id=0)
            self._session.add(run)
            self._session.flush()
        return run

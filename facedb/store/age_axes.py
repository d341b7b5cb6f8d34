"""Age axes: the directions learned (by the version they make), and the service's own attempts
to learn one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, update
from sqlalchemy.orm import Session

from facedb.domain import AxisOutcome
from facedb.records import AgeAxis, AxisAttempt, unpack_directions, utc
from facedb.store.models import AgeAxis as AgeAxisRow
from facedb.store.models import AgeAxisAttempt


class AgeAxisRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, version: str) -> AgeAxis | None:
        """Return the axis that makes embeddings of ``version``, if one was learned."""
        row = self._session.get(AgeAxisRow, version)
        if row is None:
            return None
        return AgeAxis(
            base_version=row.base_version,
            directions=unpack_directions(row.directions, row.part_dimensions),
            faces=row.faces,
            aged_faces=row.aged_faces,
            children=row.children,
            adults=row.adults,
            age_correlations=tuple(row.age_correlations),
        )

    def keep(self, axis: AgeAxis) -> None:
        """Store ``axis`` under its version (a version names its directions: kept once)."""
        if self._session.get(AgeAxisRow, axis.version) is not None:
            return
        self._session.add(
            AgeAxisRow(
                version=axis.version,
                base_version=axis.base_version,
                directions=axis.packed_directions(),
                part_dimensions=[len(d) for d in axis.directions],
                faces=axis.faces,
                aged_faces=axis.aged_faces,
                children=axis.children,
                adults=axis.adults,
                age_correlations=list(axis.age_correlations),
            )
        )


class AxisAttempts:
    """The one row saying what the service's last attempt to learn the age axis came to,
    and which process holds the lease to run one."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def last(self) -> AxisAttempt | None:
        row = self._session.get(AgeAxisAttempt, 1)
        if row is None or row.outcome is None or row.attempted_at is None:
            return None
        return AxisAttempt(
            faces=row.faces or 0,
            outcome=AxisOutcome(row.outcome),
            reason=row.reason or "",
            at=utc(row.attempted_at),
        )

    def running(self) -> str | None:
        """The process that holds an unexpired lease, if any."""
        row = self._session.get(AgeAxisAttempt, 1)
        if row is None or row.running_by is None or row.running_until is None:
            return None
        return row.running_by if utc(row.running_until) > datetime.now(UTC) else None

    def claim(self, holder: str, lease: timedelta) -> bool:
        """Take (or renew) the lease unless another process holds an unexpired one; one
        conditional UPDATE, so of two processes claiming at once one wins."""
        now = datetime.now(UTC)
        result = self._session.execute(
            update(AgeAxisAttempt)
            .where(
                AgeAxisAttempt.id == 1,
                or_(
                    AgeAxisAttempt.running_until.is_(None),
                    AgeAxisAttempt.running_until < now,
                    AgeAxisAttempt.running_by == holder,
                ),
            )
            .values(running_by=holder, running_until=now + lease)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    def finish(self, holder: str, faces: int, outcome: AxisOutcome, reason: str) -> None:
        """Record the attempt and let go of the lease."""
        self._session.execute(
            update(AgeAxisAttempt)
            .where(AgeAxisAttempt.id == 1, AgeAxisAttempt.running_by == holder)
            .values(
                faces=faces,
                outcome=outcome.value,
                reason=reason,
                attempted_at=datetime.now(UTC),
                running_by=None,
                running_until=None,
            )
        )

"""What a process reports of itself: database, index, models, cross-match lag, webhook
delivery, the age axis, auth mode."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from facedb.casework.crossmatch import CrossMatcher
from facedb.errors import FaceDBError
from facedb.index.face_index import FaceIndex
from facedb.pipeline.base import Analyzer
from facedb.services.age_axis import AgeAxisPolicy
from facedb.services.webhooks import WebhookSender
from facedb.store.unit import Store


@dataclass(frozen=True)
class Health:
    serving: bool  # the database and the index answer
    database: bool
    index: dict[str, Any]
    models: dict[str, bool]
    crossmatch_pending: int | None
    notifications: dict[str, Any]
    age_axis: dict[str, Any] | None  # None while the database is down


@dataclass(frozen=True)
class HealthService:
    store: Store
    index: FaceIndex
    analyzer: Analyzer
    crossmatch: CrossMatcher
    webhooks: WebhookSender
    age_axis: AgeAxisPolicy

    def report(self) -> Health:
        """Return the state of every part."""
        database = self.store.reachable()
        index = self.index.health() if database else {"available": False}
        return Health(
            serving=database and bool(index["available"]),
            database=database,
            index=index,
            models=self.analyzer.loaded(),
            crossmatch_pending=self.pending() if database else None,
            notifications=self.notifications() if database else {"enabled": self.webhooks.enabled},
            age_axis=self.axis() if database else None,
        )

    def axis(self) -> dict[str, Any] | None:
        """Whether the age axis is removed and why (not), or None when the database cannot say."""
        try:
            return self.age_axis.status().as_dict()
        except FaceDBError:
            return None

    def notifications(self) -> dict[str, Any]:
        """The webhook outbox: events waiting, delivered and parked, the oldest waiting
        one's age in seconds and the last error."""
        if not self.webhooks.enabled:
            return {"enabled": False}
        try:
            outbox = self.webhooks.summary()
        except FaceDBError:
            return {"enabled": True}
        oldest = outbox.oldest_pending
        return {
            "enabled": True,
            "pending": outbox.pending,
            "delivered": outbox.delivered,
            "parked": outbox.parked,
            "oldest_pending_s": (
                round((datetime.now(UTC) - oldest).total_seconds(), 1) if oldest else None
            ),
            "last_error": outbox.last_error,
        }

    def pending(self) -> int | None:
        """Faces waiting to be cross-matched, or None when the database cannot say."""
        try:
            return self.crossmatch.pending()
        except FaceDBError:
            return None

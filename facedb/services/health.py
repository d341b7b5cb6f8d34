"""What a process reports of itself: database, index, models, cross-match lag, auth mode."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from facedb.casework.crossmatch import CrossMatcher
from facedb.errors import FaceDBError
from facedb.index.face_index import FaceIndex
from facedb.pipeline.base import Analyzer
from facedb.store.unit import Store


@dataclass(frozen=True)
class Health:
    serving: bool  # the database and the index answer
    database: bool
    index: dict[str, Any]
    models: dict[str, bool]
    crossmatch_pending: int | None


@dataclass(frozen=True)
class HealthService:
    store: Store
    index: FaceIndex
    analyzer: Analyzer
    crossmatch: CrossMatcher

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
        )

    def pending(self) -> int | None:
        """Faces waiting to be cross-matched, or None when the database cannot say."""
        try:
            return self.crossmatch.pending()
        except FaceDBError:
            return None

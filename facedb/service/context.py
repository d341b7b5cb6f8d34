"""FaceDB: the process-wide context every use case runs in."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session, sessionmaker

from facedb.config import Settings
from facedb.pipeline.analyzer import FaceAnalyzer
from facedb.pipeline.embed import DIMENSION
from facedb.service.index_sync import IndexSync
from facedb.service.jobs import JobRegistry
from facedb.store.db import make_engine, make_sessionmaker, require_migrated

log = logging.getLogger(__name__)


class FaceDB:
    """Settings, database, models and index of one service process."""

    def __init__(self, settings: Settings, analyzer: FaceAnalyzer | None = None) -> None:
        self.settings = settings
        self.engine = make_engine(settings.database_url)
        self.sessions: sessionmaker[Session] = make_sessionmaker(self.engine)
        self.analyzer = analyzer or FaceAnalyzer(settings)
        self.index = IndexSync(
            settings,
            self.sessions,
            self.analyzer.model_name,
            self.analyzer.model_version,
            DIMENSION,
        )
        self.jobs = JobRegistry()

    def start(self, load_models: bool = True) -> None:
        """Refuse an un-migrated database, load the index, and (optionally) the models."""
        require_migrated(self.engine, self.settings.database_url)
        if load_models:
            self.analyzer.load()
        self.index.start()

    def close(self) -> None:
        """Save the index snapshot and release the database."""
        try:
            self.index.save()
        except OSError as exc:
            log.warning("could not save the index snapshot: %s", exc)
        self.engine.dispose()

"""FaceDB: the process-wide context every use case runs in."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session, sessionmaker

from facedb.config import Settings
from facedb.domain import IndexBackend
from facedb.pipeline.analyzer import FaceAnalyzer
from facedb.pipeline.embed import DIMENSION
from facedb.pipeline.recipes import CURRENT
from facedb.service.index_sync import IndexSync
from facedb.service.jobs import JobRegistry
from facedb.store import repository as repo
from facedb.store.db import make_engine, make_sessionmaker, require_migrated, transaction

log = logging.getLogger(__name__)


class FaceDB:
    """Settings, database, models and index of one service process."""

    def __init__(self, settings: Settings, analyzer: FaceAnalyzer | None = None) -> None:
        self.settings = settings
        self.engine = make_engine(settings.database_url)
        self.sessions: sessionmaker[Session] = make_sessionmaker(self.engine)
        self.analyzer = analyzer or FaceAnalyzer(settings)
        self.index = _index_sync_class(settings)(
            settings,
            self.sessions,
            self.analyzer.model_name,
            self.analyzer.model_version,
            DIMENSION,
            on_version=self.analyzer.use,
        )
        self.jobs = JobRegistry()

    def start(self, load_models: bool = True) -> None:
        """Refuse an un-migrated database, load the index, and (optionally) the models."""
        require_migrated(self.engine, self.settings.database_url)
        self._adopt_model_version()
        if load_models:
            self.analyzer.load()
        self.index.start()

    def _adopt_model_version(self) -> None:
        """Let an empty database take the current recipe; warn when the stored embeddings
        are an older one's.

        Embeddings of two recipes are never compared: until `facedb reindex --re-embed`
        migrates a database, the index (``IndexSync.start``, through ``on_version``) makes
        the analyzer search and enroll with the recipe that made its faces.
        """
        with transaction(self.sessions) as session:
            state = repo.index_state(session, self.analyzer.model_name, CURRENT.version)
            version = state.model_version
            if version != CURRENT.version and repo.count_faces(session) == 0:
                repo.switch_generation(
                    session, state.generation, self.analyzer.model_name, CURRENT.version
                )
                version = CURRENT.version
        if version != CURRENT.version:
            log.warning(
                "this database's embeddings were made by %s; searches and enrollments use it "
                "until `facedb reindex --re-embed` moves them to %s",
                version,
                CURRENT.version,
            )

    def close(self) -> None:
        """Save the index snapshot (FAISS) or let go of Milvus, and release the database."""
        try:
            self.index.close()
        except OSError as exc:
            log.warning("could not save the index snapshot: %s", exc)
        self.engine.dispose()


def _index_sync_class(settings: Settings) -> type[IndexSync]:
    """Return the sync of the configured backend (Milvus is imported only when chosen)."""
    if settings.index_backend == IndexBackend.MILVUS:
        from facedb.service.shared_index_sync import SharedIndexSync

        return SharedIndexSync
    return IndexSync

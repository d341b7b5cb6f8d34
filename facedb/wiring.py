"""The one place FaceDB's objects are built, from settings.

A store (the database), an analyzer (the networks), a face index that follows the store's
change log and tells the analyzer which recipe to embed with, then the services, each given
exactly what it uses. The HTTP app, every command and the evaluation build through here,
so they share the same rules and the same audit.
"""

from __future__ import annotations

from dataclasses import dataclass

from facedb.bulk.exporter import Exporter
from facedb.bulk.importer import Importer
from facedb.bulk.tables import Tables
from facedb.casework.crossmatch import CrossMatcher
from facedb.casework.review import ReviewService
from facedb.config import Settings
from facedb.index.face_index import FaceIndex
from facedb.pipeline.base import Analyzer
from facedb.services.age_axis import AgeAxisPolicy
from facedb.services.background import Background
from facedb.services.enrollment import EnrollmentService
from facedb.services.health import HealthService
from facedb.services.keys import KeyService
from facedb.services.notes import NoteService
from facedb.services.persons import PersonService
from facedb.services.quality import QualityService
from facedb.services.reindex import ReindexService
from facedb.services.search import SearchService
from facedb.services.webhooks import WebhookSender
from facedb.store.seal import read_keyring
from facedb.store.unit import Store
from facedb.trail.audit import AuditService
from facedb.trail.jobs import JobRegistry
from facedb.trail.notices import Notices


@dataclass
class Services:
    """Everything one FaceDB process runs on. Start it before use; close it after."""

    settings: Settings
    store: Store
    analyzer: Analyzer
    index: FaceIndex
    audit: AuditService
    keys: KeyService
    persons: PersonService
    notes: NoteService
    enrollment: EnrollmentService
    search: SearchService
    crossmatch: CrossMatcher
    review: ReviewService
    reindex: ReindexService
    age_axis: AgeAxisPolicy
    quality: QualityService
    importer: Importer
    exporter: Exporter
    tables: Tables
    health: HealthService
    jobs: JobRegistry
    background: Background
    webhooks: WebhookSender

    def start(
        self, load_models: bool = True, background: bool = False, age_axis: bool = False
    ) -> None:
        """Refuse an un-migrated database or sealed data without its key, load the models
        (optionally), serve the index, and (``background``) follow other processes, sweep
        cross-matching and deliver webhook events, and (``age_axis``: the HTTP service)
        learn the age axis when it is due. A command (an import) asks for it when it ends,
        not on every 200 faces on the way."""
        self.store.require_migrated()
        self.store.require_keys()
        if load_models:
            self.analyzer.load()
        self.index.start()
        if background:
            self.background.start(self._age_axis_due if age_axis else None)
            self.webhooks.start()

    def _age_axis_due(self) -> None:
        self.age_axis.tick(self.jobs)

    def close(self) -> None:
        """Stop the background work, save the index (FAISS) or let go of Milvus, and
        release the database."""
        self.webhooks.stop()
        self.background.stop()
        self.index.close()
        self.store.close()


def build(settings: Settings, analyzer: Analyzer | None = None) -> Services:
    """Return the services of one process (nothing is started or loaded yet)."""
    store = Store(settings.database_url, read_keyring(settings))
    if analyzer is None:
        from facedb.pipeline.analyzer import FaceAnalyzer
        from facedb.pipeline.recipes import RecipeBook

        # The process's one book of recipes: the analyzer owns it, the index and the
        # re-index read and add to it through the analyzer.
        analyzer = FaceAnalyzer(settings, RecipeBook())
    index = FaceIndex(settings, store, analyzer)
    audit = AuditService(store)
    notices = Notices.of(settings)
    crossmatch = CrossMatcher(settings, store, index, audit, notices)
    persons = PersonService(store, index, audit, crossmatch.sweep, crossmatch.recheck)
    enrollment = EnrollmentService(settings, store, index, analyzer, audit, crossmatch.sweep)
    keys = KeyService(store, audit)
    webhooks = WebhookSender(settings, store)
    reindex = ReindexService(store, index, analyzer, audit)
    age_axis = AgeAxisPolicy(settings, store, index, analyzer, reindex, crossmatch)
    jobs = JobRegistry()
    quality = QualityService(settings, store, analyzer)
    return Services(
        settings=settings,
        store=store,
        analyzer=analyzer,
        index=index,
        audit=audit,
        keys=keys,
        persons=persons,
        notes=NoteService(store, audit),
        enrollment=enrollment,
        search=SearchService(settings, store, index, analyzer, audit),
        crossmatch=crossmatch,
        review=ReviewService(store, audit, notices, settings.reject_note_required),
        reindex=reindex,
        age_axis=age_axis,
        quality=quality,
        importer=Importer(settings, store, persons, enrollment, audit),
        exporter=Exporter(store, audit, quality),
        tables=Tables(store, audit),
        health=HealthService(store, index, analyzer, crossmatch, webhooks, age_axis),
        jobs=jobs,
        background=Background(index, crossmatch.sweep),
        webhooks=webhooks,
    )

"""A database embedded by the old recipe: detected on start, never mixed, migrated by re-embed."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from facedb.domain import JobKind
from facedb.pipeline.analyzer import FaceAnalyzer
from facedb.pipeline.recipes import CURRENT, LEGACY_VERSION
from facedb.sample_data import photos
from facedb.service.context import FaceDB
from facedb.service.enrollment import enroll
from facedb.service.jobs import Job
from facedb.service.persons import create_person
from facedb.service.reindex import reindex
from facedb.service.search import SearchFilters, rank_identities
from facedb.service.uploads import Upload
from facedb.store import repository as repo
from facedb.store.db import transaction, upgrade
from tests.factories import model_db

pytestmark = pytest.mark.models


@pytest.fixture
def analyzer_restored(analyzer: FaceAnalyzer) -> Iterator[FaceAnalyzer]:
    """The shared analyzer, back on the current recipe after the test."""
    yield analyzer
    analyzer.use(CURRENT.version)


def stored_versions(db: FaceDB) -> set[str]:
    with transaction(db.sessions) as session:
        rows = session.execute(sa.text("SELECT DISTINCT model_version FROM embeddings"))
        return {r[0] for r in rows}


def test_old_embeddings_are_served_alike_until_re_embedded(
    url: str, tmp_path: Path, analyzer_restored: FaceAnalyzer, celebrity: Path
) -> None:
    analyzer = analyzer_restored
    train, val = photos(celebrity / "train"), photos(celebrity / "val")
    upgrade(url)
    # A database whose faces were embedded by the legacy recipe (as a release before it).
    db = model_db(url, tmp_path, analyzer)
    assert db.index.model_version == CURRENT.version  # an empty database takes the current
    with transaction(db.sessions) as session:
        repo.switch_generation(session, 1, analyzer.model_name, LEGACY_VERSION)
    analyzer.use(LEGACY_VERSION)
    db.index.model_version = LEGACY_VERSION
    people = {}
    for name in ("madonna", "elton_john"):
        person = create_person(db, {"name": name})
        uploads = [Upload(p.name, io.BytesIO(p.read_bytes())) for p in train[name][:2]]
        assert enroll(db, person.id, uploads).count("stored") == 2
        people[name] = person.id
    db.close()
    analyzer.use(CURRENT.version)  # a new release starts with the current recipe

    # On start the stored version is detected and queries are embedded the same way.
    db = model_db(url, tmp_path, analyzer)
    assert db.index.model_version == LEGACY_VERSION
    assert analyzer.model_version == LEGACY_VERSION
    assert stored_versions(db) == {LEGACY_VERSION}
    probe = analyzer.analyze(val["madonna"][0].read_bytes())[0]
    assert probe.model_version == LEGACY_VERSION
    legacy_best = rank_identities(db, probe.embedding, 2, 1.0, SearchFilters())[0]
    assert legacy_best.person.id == people["madonna"]

    # A photo enrolled now is embedded by the legacy recipe too: one index, one version.
    extra = Upload("extra.jpg", io.BytesIO(train["madonna"][2].read_bytes()))
    assert enroll(db, people["madonna"], [extra]).count("stored") == 1
    assert stored_versions(db) == {LEGACY_VERSION}

    job = Job(kind=JobKind.REINDEX, params={"re_embed": True})
    reindex(db, job, re_embed=True)
    assert job.counts["embedded"] == 5 and job.counts["failed"] == 0
    assert stored_versions(db) == {CURRENT.version}
    assert db.index.model_version == analyzer.model_version == CURRENT.version
    assert db.index.count == 5

    probe = analyzer.analyze(val["madonna"][0].read_bytes())[0]
    assert probe.model_version == CURRENT.version
    best = rank_identities(db, probe.embedding, 2, 1.0, SearchFilters())[0]
    assert best.person.id == people["madonna"]
    # The index now holds the current recipe's embeddings: the best score is the query's
    # cosine with one of them, computed afresh from the stored photos.
    fresh = [analyzer.analyze(p.read_bytes())[0].embedding for p in train["madonna"][:3]]
    expected = max(float(np.dot(probe.embedding, v)) for v in fresh)
    assert best.score == pytest.approx(expected, abs=1e-4)
    assert abs(best.score - legacy_best.score) > 1e-3  # the scores did change
    db.close()

    # A restart keeps the migrated version.
    db = model_db(url, tmp_path, analyzer)
    assert db.index.model_version == CURRENT.version
    db.close()

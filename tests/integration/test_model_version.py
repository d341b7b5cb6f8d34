"""A database embedded by the old recipe: detected on start, never mixed, migrated by re-embed."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from facedb.domain import JobKind
from facedb.models.sample_data import photos
from facedb.pipeline.analyzer import FaceAnalyzer
from facedb.pipeline.recipes import DEFAULT, LEGACY_VERSION
from facedb.services.search import Candidate, SearchFilters
from facedb.services.uploads import Upload
from facedb.store.db import upgrade
from facedb.trail.jobs import Job
from facedb.wiring import Services
from tests.factories import model_services

pytestmark = pytest.mark.models


@pytest.fixture
def analyzer_restored(analyzer: FaceAnalyzer) -> Iterator[FaceAnalyzer]:
    """The shared analyzer, back on the current recipe after the test."""
    yield analyzer
    analyzer.use(DEFAULT.version)


def stored_versions(db: Services) -> set[str]:
    with db.store.engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT DISTINCT model_version FROM embeddings"))
        return {r[0] for r in rows}


def best(db: Services, vector: np.ndarray) -> Candidate:
    return db.search.rank([vector], 2, 1.0, SearchFilters())[0][0]


def test_old_embeddings_are_served_alike_until_re_embedded(
    url: str, tmp_path: Path, analyzer_restored: FaceAnalyzer, celebrity: Path
) -> None:
    analyzer = analyzer_restored
    train, val = photos(celebrity / "train"), photos(celebrity / "val")
    upgrade(url)
    # A database whose faces were embedded by the legacy recipe (as a release before it).
    db = model_services(url, tmp_path, analyzer)
    assert db.index.model_version == DEFAULT.version  # an empty database takes the current
    with db.store.unit() as unit:
        unit.generations.switch(1, analyzer.model_name, LEGACY_VERSION)
    db.index.rebuild()  # serves, and embeds with, the legacy recipe from now on
    assert analyzer.model_version == LEGACY_VERSION
    people = {}
    for name in ("madonna", "elton_john"):
        person = db.persons.create({"name": name})
        uploads = [Upload(p.name, io.BytesIO(p.read_bytes())) for p in train[name][:2]]
        assert db.enrollment.enroll(person.id, uploads).stored == 2
        people[name] = person.id
    db.close()
    analyzer.use(DEFAULT.version)  # a new release starts with the current recipe

    # On start the stored version is detected and queries are embedded the same way.
    db = model_services(url, tmp_path, analyzer)
    assert db.index.model_version == LEGACY_VERSION
    assert analyzer.model_version == LEGACY_VERSION
    assert stored_versions(db) == {LEGACY_VERSION}
    probe = analyzer.analyze(val["madonna"][0].read_bytes())[0]
    assert probe.model_version == LEGACY_VERSION
    legacy_best = best(db, probe.embedding)
    assert legacy_best.person.id == people["madonna"]

    # A photo enrolled now is embedded by the legacy recipe too: one index, one version.
    extra = Upload("extra.jpg", io.BytesIO(train["madonna"][2].read_bytes()))
    assert db.enrollment.enroll(people["madonna"], [extra]).stored == 1
    assert stored_versions(db) == {LEGACY_VERSION}

    job = Job(kind=JobKind.REINDEX, params={"re_embed": True})
    db.reindex.run(job, re_embed=True)
    assert job.counts["embedded"] == 5 and job.counts["failed"] == 0
    assert stored_versions(db) == {DEFAULT.version}
    assert db.index.model_version == analyzer.model_version == DEFAULT.version
    assert db.index.count == 5

    probe = analyzer.analyze(val["madonna"][0].read_bytes())[0]
    assert probe.model_version == DEFAULT.version
    found = best(db, probe.embedding)
    assert found.person.id == people["madonna"]
    # The index now holds the current recipe's embeddings: the best score is the query's
    # cosine with one of them, computed afresh from the stored photos.
    fresh = [analyzer.analyze(p.read_bytes())[0].embedding for p in train["madonna"][:3]]
    expected = max(float(np.dot(probe.embedding, v)) for v in fresh)
    assert found.score == pytest.approx(expected, abs=1e-4)
    assert abs(found.score - legacy_best.score) > 1e-3  # the scores did change
    db.close()

    # A restart keeps the migrated version.
    db = model_services(url, tmp_path, analyzer)
    assert db.index.model_version == DEFAULT.version
    db.close()

"""The age axis removed from a database: learned by the re-index job from the faces held,
written as a new generation, served after a restart, refused (changing nothing) where the
faces' ages cannot give one. Synthetic embeddings on both databases with the real FAISS
index; then the real models on the celebrity photos, searches embedded as the faces were."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from facedb.domain import AxisOutcome, JobKind
from facedb.errors import AgeAxisRefused
from facedb.models.sample_data import photos
from facedb.pipeline.age_axis import AxisGuard
from facedb.pipeline.analyzer import FaceAnalyzer
from facedb.pipeline.embed import MODEL_NAME
from facedb.pipeline.recipes import DEFAULT
from facedb.records import AGE_AXIS_TAG
from facedb.services.age_axis import LEASE
from facedb.services.search import SearchFilters
from facedb.services.uploads import Upload
from facedb.store.embeddings import Embedded
from facedb.store.photos import NewFace, NewPhoto
from facedb.trail.jobs import Job
from facedb.wiring import Services
from tests.conftest import REPO
from tests.factories import (
    add_person,
    make_settings,
    model_services,
    run_facedb,
    started,
    unit_vectors,
)
from tests.fakes import FAKE_RECIPE


def remove_age_axis(db: Services, guard: AxisGuard | None = None, re_embed: bool = False) -> Job:
    job = Job(kind=JobKind.REINDEX, params={"remove_age_axis": True})
    db.reindex.run(job, re_embed=re_embed, remove_age_axis=True, guard=guard)
    return job


def state(db: Services) -> tuple[int, str, int, set[str]]:
    """The active generation, its version, the learned axes and the stored versions."""
    with db.store.engine.connect() as connection:
        generation, version = connection.execute(
            sa.text("SELECT generation, model_version FROM index_state")
        ).one()
        axes = connection.execute(sa.text("SELECT count(*) FROM age_axes")).scalar_one()
        stored = connection.execute(sa.text("SELECT DISTINCT model_version FROM embeddings"))
        return int(generation), str(version), int(axes), {r[0] for r in stored}


# --- synthetic embeddings ---------------------------------------------------------------------
AGE_DIRECTION = unit_vectors(1, 77)[0]


def cross_age_register(
    db: Services, persons: int, seed: int, age_weight: float
) -> dict[int, tuple[str, float]]:
    """Each person: a childhood photo (age 4-12) and an adult one (25-45), their embedding
    the person's identity plus ``age_weight`` x age along one direction, plus noise. Returns
    {face id: (person id, age)}."""
    rng = np.random.default_rng(seed)
    who = unit_vectors(persons, seed + 1)
    faces: dict[int, tuple[str, float]] = {}
    for p in range(persons):
        person_id = add_person(db, f"person {p}")
        with db.store.unit() as unit:
            generation, _ = unit.generations.lock()
            for age in (rng.uniform(4, 12), rng.uniform(25, 45)):
                x = who[p] + age_weight * (age - 25) / 12 * AGE_DIRECTION
                x = x + 0.35 * rng.standard_normal(128) / np.sqrt(128) * 4
                vector = (x / np.linalg.norm(x)).astype(np.float32)
                content = uuid.uuid4().bytes
                photo = NewPhoto(person_id, hashlib.sha256(content).hexdigest(), content,
                                 "image/jpeg", 1, 1, None, None)  # fmt: skip
                face = NewFace((0, 0, 1, 1), {}, 1.0, float(age), None, None, b"", vector)
                embedded = Embedded(generation, MODEL_NAME, FAKE_RECIPE.version)
                faces[unit.photos.add(photo, [face], embedded).faces[0].id] = (person_id, age)
    db.index.catch_up()
    return faces


def adults_found_first(db: Services, faces: dict[int, tuple[str, float]]) -> float:
    """Share of adult faces whose own childhood face is their best other match."""
    with db.store.unit() as unit:
        ids, vectors = unit.embeddings.of_faces(db.index.generation, list(faces), 128)
    row = {int(i): n for n, i in enumerate(ids)}
    hits = adults = 0
    for face_id, (person, age) in faces.items():
        if age < 18:
            continue
        adults += 1
        _, found = db.index.search(vectors[row[face_id]][None, :], 2)
        best = next(int(f) for f in found[0] if int(f) != face_id)
        hits += faces[best][0] == person
    return hits / adults


@pytest.mark.parametrize("backend", ["faiss", "milvus-lite"])
def test_an_axis_is_learned_from_the_faces_held_and_served_after_a_restart(
    url: str, tmp_path: Path, backend: str
) -> None:
    milvus = {"index_backend": "milvus", "milvus_uri": str(tmp_path / "milvus.db")}
    settings = make_settings(tmp_path, url, **(milvus if backend == "milvus-lite" else {}))
    db = started(settings)
    faces = cross_age_register(db, persons=150, seed=3, age_weight=0.9)
    before = adults_found_first(db, faces)
    job = remove_age_axis(db)  # the default guard: 300 faces, ages 4-45
    assert job.counts["derived"] == 300 and job.counts["failed"] == 0
    generation, version, axes, stored = state(db)
    assert generation == 2 and version.startswith(FAKE_RECIPE.version + AGE_AXIS_TAG)
    assert axes == 1 and stored == {version}  # the old generation dropped
    assert db.index.model_version == version and db.index.count == 300
    assert db.index.health()["re_embed_required"] is False  # the chosen recipe, less an axis
    recipe = db.analyzer.recipes.of(version)
    assert recipe.axis is not None and recipe.base_version == FAKE_RECIPE.version
    assert abs(float(recipe.axis.directions[0] @ AGE_DIRECTION)) > 0.9
    assert recipe.axis.age_correlations[0] > 0.5
    after = adults_found_first(db, faces)
    assert after > before  # the childhood face found more often once age is out of the way
    audit = db.audit.recent(1, None, None)[0]
    assert audit.results[0]["age_axis"]["model_version"] == version
    assert audit.results[0]["age_axis"]["parts_changed"] == [True]
    db.close()

    db = started(settings)  # a new process (its own book) knows the axis only from the database
    assert db.index.model_version == version and db.analyzer.model_version == version
    assert db.analyzer.recipes.of(version).version == version
    assert adults_found_first(db, faces) == after

    # Removing it twice is refused: the axis has to be learned again from raw embeddings.
    with pytest.raises(AgeAxisRefused, match=r"already.*--re-embed --remove-age-axis"):
        remove_age_axis(db)
    assert state(db) == (generation, version, axes, stored)
    db.close()


def test_faces_whose_ages_do_not_vary_keep_their_embeddings(url: str, tmp_path: Path) -> None:
    db = started(make_settings(tmp_path, url))
    cross_age_register(db, persons=150, seed=4, age_weight=0.0)  # age leaves no trace
    before = state(db)
    with pytest.raises(AgeAxisRefused, match="does not follow their ages"):
        remove_age_axis(db)
    assert state(db) == before and db.index.model_version == FAKE_RECIPE.version
    with pytest.raises(AgeAxisRefused, match="at least 1000 faces"):
        remove_age_axis(db, AxisGuard(min_faces=1000))
    assert state(db) == before
    db.close()


def test_the_command_line_removes_it_and_says_what_it_serves(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    db = started(make_settings(tmp_path, url))
    cross_age_register(db, persons=110, seed=5, age_weight=0.9)
    db.close()
    env = {**os.environ, "FACEDB_DATABASE_URL": url, "FACEDB_DATA_DIR": str(tmp_path / "data")}
    said = run_facedb(env, "reindex", "--remove-age-axis")
    assert "reindex succeeded: {'derived': 220, 'failed': 0, 'indexed': 220}" in said
    assert f"serving facenet (age axis removed): {FAKE_RECIPE.version}{AGE_AXIS_TAG}" in said
    command = [sys.executable, "-m", "tests.integration._fake_cli", "reindex", "--remove-age-axis"]
    again = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert again.returncode == 1
    assert "error: AgeAxisRefused: an age axis is removed from this database's" in again.stdout


# --- the real models ------------------------------------------------------------------------
@pytest.mark.models
def test_searches_are_embedded_without_the_axis_as_the_faces_were(
    url: str, tmp_path: Path, analyzer: FaceAnalyzer, celebrity: Path
) -> None:
    """Four adults cannot show an age axis (the default guard refuses them); a guard let
    down to them checks the mechanism: stored faces derived in the database, a search
    embedded by the pipeline, the same numbers."""
    train, val = photos(celebrity / "train"), photos(celebrity / "val")
    db = model_services(url, tmp_path, analyzer)
    try:
        ids = {}
        for name in ("madonna", "elton_john", "mindy_kaling", "ben_afflek"):
            person = db.persons.create({"name": name})
            uploads = [Upload(p.name, io.BytesIO(p.read_bytes())) for p in train[name][:2]]
            assert db.enrollment.enroll(person.id, uploads).stored == 2
            ids[name] = person.id
        before = state(db)
        with pytest.raises(AgeAxisRefused, match=r"at least 200 faces with an age; .* holds 8"):
            remove_age_axis(db)
        assert state(db) == before

        remove_age_axis(db, AxisGuard(min_faces=8, min_share=0.0, min_correlation=0.0))
        version = db.index.model_version
        assert version.startswith(DEFAULT.version + AGE_AXIS_TAG)
        assert analyzer.model_version == version
        probe = analyzer.analyze(val["madonna"][0].read_bytes())[0]
        assert probe.model_version == version
        recipe = analyzer.recipes.of(version)
        assert recipe.axis is not None
        ends = np.cumsum(recipe.part_dimensions)
        parts = np.split(probe.embedding, ends[:-1])
        for part, direction in zip(parts, recipe.axis.directions, strict=True):
            assert abs(float(part @ direction)) < 1e-5  # each network's part, without its own
        result = db.search.rank([probe.embedding], 3, 1.0, SearchFilters())[0]
        assert result[0].person.id == ids["madonna"]
        enrolled = [analyzer.analyze(p.read_bytes())[0].embedding for p in train["madonna"][:2]]
        assert result[0].score == pytest.approx(
            max(float(probe.embedding @ v) for v in enrolled), abs=1e-4
        )
        # Enrolled now, a face is embedded without the axis too: one index, one version.
        extra = Upload("extra.jpg", io.BytesIO(train["madonna"][2].read_bytes()))
        assert db.enrollment.enroll(ids["madonna"], [extra]).stored == 1
        assert state(db)[3] == {version}

        # A re-embed goes back to the chosen recipe as it comes (the raw embeddings).
        db.reindex.run(Job(kind=JobKind.REINDEX, params={}), re_embed=True)
        assert db.index.model_version == analyzer.model_version == DEFAULT.version
        assert state(db)[3] == {DEFAULT.version}
    finally:
        analyzer.use(DEFAULT.version)
        db.close()


# --- served by default ----------------------------------------------------------------------
def attempts(db: Services) -> tuple[int | None, str | None]:
    with db.store.engine.connect() as connection:
        row = connection.execute(sa.text("SELECT faces, outcome FROM age_axis_attempts")).one()
        return row[0], row[1]


def test_the_service_learns_the_axis_once_the_faces_pass_the_guard(
    url: str, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, url)
    db = started(settings)
    faces = cross_age_register(db, persons=90, seed=6, age_weight=0.9)
    waiting = db.age_axis.consider()  # 180 faces: below the guard's 200, nothing is tried
    assert (waiting.on, waiting.faces, waiting.next_attempt_at, waiting.due) == (
        False,
        180,
        200,
        False,
    )
    assert "once the database holds 200 faces with an age" in waiting.reason
    assert state(db)[0] == 1 and attempts(db) == (None, None)

    faces |= cross_age_register(db, persons=60, seed=7, age_weight=0.9)
    before = adults_found_first(db, faces)
    status = db.age_axis.consider()  # 300 faces: learned and served, learned again at 4x
    assert (status.on, status.learned_from, status.next_attempt_at) == (True, 300, 1200)
    assert "removed: learned from 300 faces (" in status.reason
    assert "once the database holds 1200 faces" in status.reason
    generation, version, axes, _ = state(db)
    assert generation == 2 and AGE_AXIS_TAG in version and axes == 1
    assert attempts(db) == (300, "learned")
    assert adults_found_first(db, faces) > before
    assert db.health.report().age_axis == status.as_dict()
    assert db.age_axis.consider() == status  # not due again until the faces have grown
    db.close()

    other = started(settings, migrate=False)  # another process says the same
    assert other.age_axis.status() == status and other.index.model_version == version
    other.close()


def test_a_refusal_is_kept_and_tried_again_only_once_the_faces_grow(
    url: str, tmp_path: Path
) -> None:
    db = started(make_settings(tmp_path, url))
    cross_age_register(db, persons=150, seed=8, age_weight=0.0)  # age leaves no trace
    refused = db.age_axis.consider()
    assert refused.on is False and refused.next_attempt_at == 375  # 300 x 1.25
    assert "refused when tried at 300 faces (the main direction" in refused.reason
    assert attempts(db) == (300, "refused") and state(db)[0] == 1
    assert db.age_axis.consider() == refused  # not retried on every check
    db.close()


def test_turned_off_it_is_never_learned_by_the_service(url: str, tmp_path: Path) -> None:
    db = started(make_settings(tmp_path, url, age_axis="off"))
    cross_age_register(db, persons=150, seed=9, age_weight=0.9)
    status = db.age_axis.consider()
    assert (status.on, status.next_attempt_at) == (False, None)
    assert status.reason.startswith("turned off (FACEDB_AGE_AXIS=off)")
    assert state(db)[0] == 1 and attempts(db) == (None, None)
    remove_age_axis(db)  # the operator still can
    assert "is still removed: `facedb reindex --re-embed`" in db.age_axis.status().reason
    db.close()


def test_one_process_learns_it_while_the_others_wait(url: str, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, url)
    db, other = started(settings), None
    cross_age_register(db, persons=150, seed=10, age_weight=0.9)
    other = started(settings, migrate=False)
    with db.store.unit() as unit:  # another process holds the lease (it is learning it)
        assert unit.axis_attempts.claim(other.age_axis.holder, LEASE)
    assert db.age_axis.status().running and not db.age_axis.status().due
    assert db.age_axis.consider().on is False and state(db)[0] == 1
    with db.store.unit() as unit:
        assert not unit.axis_attempts.claim(db.age_axis.holder, LEASE)  # one holder at a time
        unit.axis_attempts.finish(other.age_axis.holder, 0, AxisOutcome.FAILED, "killed")
    # The background check starts it on the job registry's thread.
    db.age_axis.tick(db.jobs)
    deadline = time.monotonic() + 60
    while attempts(db)[1] == "failed" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert db.age_axis.status().on and attempts(db) == (300, "learned")
    other.index.catch_up()
    assert other.index.model_version == db.index.model_version  # the other follows
    other.close()
    db.close()


@pytest.mark.models
@pytest.mark.parametrize(  # the real models on one database: the policy tests above take both
    "url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_learned_again_as_the_faces_grow_and_kept_where_the_new_faces_refuse_it(
    url: str, tmp_path: Path, analyzer: FaceAnalyzer, celebrity: Path
) -> None:
    """The real models on the celebrity photos, the guard let down to them: learned at 4
    faces, learned again (a re-embed) once they doubled; the next time the guard refuses
    the faces, and the axis served before is removed again rather than none."""
    train = photos(celebrity / "train")
    db = model_services(url, tmp_path, analyzer)
    db.age_axis.guard = AxisGuard(min_faces=4, min_share=0.0, min_correlation=0.0)
    db.age_axis.relearn_growth = 1.0  # learned again once the faces double
    try:
        names = ["madonna", "elton_john", "mindy_kaling", "ben_afflek"]
        ids = {n: db.persons.create({"name": n}).id for n in names}

        def enroll(photo: int) -> None:
            for name in names:
                upload = Upload("p.jpg", io.BytesIO(train[name][photo].read_bytes()))
                assert db.enrollment.enroll(ids[name], [upload]).stored == 1

        enroll(0)
        first = db.age_axis.consider()
        assert (first.on, first.learned_from, first.next_attempt_at) == (True, 4, 8)
        version = db.index.model_version
        enroll(1)
        again = db.age_axis.consider()  # 8 faces: re-embedded, learned from all of them
        assert (again.on, again.learned_from, again.next_attempt_at) == (True, 8, 16)
        assert db.index.model_version != version and state(db)[3] == {db.index.model_version}
        version, generation = db.index.model_version, state(db)[0]
        enroll(2)
        enroll(3)
        db.age_axis.guard = AxisGuard(min_faces=4, min_share=0.0, min_correlation=1.1)
        kept = db.age_axis.consider()  # 16 faces that refuse: the axis of 8 is removed again
        assert (kept.on, kept.learned_from) == (True, 8)
        assert db.index.model_version == version and state(db)[0] == generation + 2
        assert db.index.count == 16 and attempts(db) == (16, "learned")
    finally:
        analyzer.use(DEFAULT.version)
        db.close()

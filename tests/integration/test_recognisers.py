"""Recognisers behind the model version, with the real models on the celebrity photos: a
database made with FaceNet alone moved to the FaceNet + dlib fusion and on to the default
three-network fusion on both databases, an operator's ONNX
recogniser added from its card (each wrong card a clear error with nothing installed), and
the young/adult evaluation mode."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from facedb.config import Settings
from facedb.domain import JobKind
from facedb.errors import AgeAxisRefused, InvalidInput, ModelInstallError
from facedb.evaluation import protocol
from facedb.models.card_install import add_recogniser
from facedb.models.catalog import FACENET_FILE, onnx_dir, sha256_file
from facedb.models.sample_data import photos
from facedb.pipeline.analyzer import FaceAnalyzer
from facedb.pipeline.recipes import (
    BUILT_IN,
    DEFAULT,
    FUSED_VERSION,
    TRIPLE_VERSION,
    WEIGHTED_VERSION,
)
from facedb.services.search import SearchFilters
from facedb.services.uploads import Upload
from facedb.store.db import upgrade
from facedb.trail.jobs import Job
from facedb.wiring import Services
from tests.factories import make_settings, model_services, started

pytestmark = pytest.mark.models
FACENET = BUILT_IN["facenet"]


@pytest.fixture
def fused(analyzer: FaceAnalyzer) -> Iterator[FaceAnalyzer]:
    """The shared analyzer with FACEDB_RECIPE=facenet+dlib chosen; restored afterwards."""
    analyzer.target = BUILT_IN["facenet+dlib"]
    yield analyzer
    analyzer.target = DEFAULT
    analyzer.use(DEFAULT.version)


def stored_versions(db: Services) -> set[str]:
    with db.store.engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT DISTINCT model_version FROM embeddings"))
        return {r[0] for r in rows}


def re_embed(db: Services) -> Job:
    job = Job(kind=JobKind.REINDEX, params={"re_embed": True})
    db.reindex.run(job, re_embed=True)
    return job


def enroll(db: Services, people: dict[str, list[Path]], names: list[str]) -> dict[str, str]:
    ids = {}
    for name in names:
        person = db.persons.create({"name": name})
        uploads = [Upload(p.name, io.BytesIO(p.read_bytes())) for p in people[name][:2]]
        assert db.enrollment.enroll(person.id, uploads).stored == 2
        ids[name] = person.id
    return ids


# Each index on one database (the suite's time; either database meets either index elsewhere).
@pytest.mark.parametrize(
    ("url", "backend"),
    [("sqlite", "milvus-lite"), pytest.param("postgres", "faiss", marks=pytest.mark.postgres)],
    indirect=["url"],
)
def test_a_database_moves_from_facenet_to_the_fused_recipes(
    url: str, tmp_path: Path, fused: FaceAnalyzer, celebrity: Path, backend: str
) -> None:
    """The index is rebuilt at the new length (FAISS in the process, a Milvus collection)."""
    train, val = photos(celebrity / "train"), photos(celebrity / "val")
    upgrade(url)
    milvus = {"index_backend": "milvus", "milvus_uri": str(tmp_path / "milvus.db")}
    overrides = milvus if backend == "milvus-lite" else {}

    def model_services(url: str, folder: Path, analyzer: FaceAnalyzer) -> Services:
        settings = make_settings(folder, url, model_dir=analyzer.settings.models_path, **overrides)
        return started(settings, analyzer=analyzer)

    fused.target = FACENET  # a database made with FaceNet alone
    db = model_services(url, tmp_path, fused)
    ids = enroll(db, train, ["madonna", "elton_john", "mindy_kaling"])
    db.close()

    fused.target = BUILT_IN["facenet+dlib"]  # FACEDB_RECIPE=facenet+dlib from now on
    db = model_services(url, tmp_path, fused)
    assert db.index.model_version == FACENET.version  # served as made until a re-embed
    assert db.index.health()["re_embed_required"] is True
    job = re_embed(db)
    assert job.counts["embedded"] == 6 and job.counts["failed"] == 0
    assert stored_versions(db) == {FUSED_VERSION}
    assert db.index.model_version == fused.model_version == FUSED_VERSION
    assert db.index.dimension == 256 and db.index.count == 6
    assert (db.index.match_threshold, db.index.candidate_threshold) == (0.755, 0.541)

    probe = fused.analyze(val["madonna"][0].read_bytes())[0]
    assert probe.embedding.shape == (256,) and probe.model_version == FUSED_VERSION
    result = db.search.rank([probe.embedding], 3, 1.0, SearchFilters())[0]
    assert result[0].person.id == ids["madonna"]
    enrolled = [fused.analyze(p.read_bytes())[0].embedding for p in train["madonna"][:2]]
    assert result[0].score == pytest.approx(
        max(float(probe.embedding @ v) for v in enrolled), abs=1e-4
    )
    db.close()

    db = model_services(url, tmp_path, fused)  # a restart keeps it
    assert db.index.model_version == FUSED_VERSION and db.index.dimension == 256
    fused.target = BUILT_IN["facenet+dlib+sface"]  # and on: FaceNet, dlib and SFace
    db.close()
    db = model_services(url, tmp_path, fused)
    assert db.index.model_version == FUSED_VERSION
    re_embed(db)
    assert stored_versions(db) == {TRIPLE_VERSION} and db.index.dimension == 384
    assert (db.index.match_threshold, db.index.candidate_threshold) == (0.612, 0.42)
    probe = fused.analyze(val["elton_john"][0].read_bytes())[0]
    assert probe.embedding.shape == (384,)
    assert (
        db.search.rank([probe.embedding], 3, 1.0, SearchFilters())[0][0].person.id
        == ids["elton_john"]
    )
    db.close()

    # On to the default, the same networks weighed as chosen at register scale: an upgrade
    # reads no photo (the stored parts are weighed again).
    fused.target = DEFAULT
    db = model_services(url, tmp_path, fused)
    assert db.index.health()["re_embed_required"] is True
    assert re_embed(db).counts == {"derived": 6, "failed": 0, "indexed": 6}
    assert stored_versions(db) == {WEIGHTED_VERSION}
    assert (db.index.match_threshold, db.index.candidate_threshold) == (0.581, 0.398)
    db.close()

    # Back to facenet+dlib: its parts are in the stored embeddings, so they are worked out
    # from them (no photo read) and equal what the networks give.
    fused.target = BUILT_IN["facenet+dlib"]
    db = model_services(url, tmp_path, fused)
    job = re_embed(db)
    assert job.counts == {"derived": 6, "failed": 0, "indexed": 6}
    assert stored_versions(db) == {FUSED_VERSION} and db.index.dimension == 256
    with db.store.unit() as unit:
        _, derived = unit.embeddings.of_faces(db.index.generation, db.index.ids().tolist(), 256)
    made = [fused.analyze(p.read_bytes())[0].embedding for n in ids for p in train[n][:2]]
    for vector in made:
        assert float(np.max(derived @ vector)) == pytest.approx(1.0, abs=1e-5)
    db.close()


def test_each_network_of_the_default_recipe_tells_the_celebrities_apart(
    analyzer: FaceAnalyzer, celebrity: Path
) -> None:
    """FaceNet's, dlib's and SFace's parts of one embedding, each on its own: a held-out
    photo is closer to the same person's photos than to anyone else's."""
    train, val = photos(celebrity / "train"), photos(celebrity / "val")
    analyzer.use(DEFAULT.version)
    ends = np.cumsum(DEFAULT.part_dimensions)[:-1]

    def parts(path: Path) -> list[Any]:
        (face,) = analyzer.analyze(path.read_bytes())
        assert face.embedding.shape == (384,) and face.model_version == WEIGHTED_VERSION
        return [v / np.linalg.norm(v) for v in np.split(face.embedding, ends)]

    gallery = {name: [parts(p) for p in train[name][:2]] for name in train}
    for name in ("madonna", "elton_john", "mindy_kaling"):
        probe = parts(val[name][0])
        for i, network in enumerate(("facenet", "dlib", "sface")):
            best = {n: max(float(probe[i] @ g[i]) for g in faces) for n, faces in gallery.items()}
            assert max(best, key=lambda n: best[n]) == name, (network, name, best)


# --- an operator's recogniser ---------------------------------------------------------------
@pytest.fixture
def own_models(tmp_path: Path, analyzer: FaceAnalyzer) -> Iterator[Path]:
    """A model folder of this test's own: the installed models linked in, no recognisers
    (the analyzers made on it know its recognisers; the shared one never sees them)."""
    folder = tmp_path / "models"
    folder.mkdir()
    for entry in analyzer.settings.models_path.iterdir():
        if entry.name != "recognisers":
            (folder / entry.name).symlink_to(entry)
    yield folder


def standin_card(folder: Path, analyzer: FaceAnalyzer, **changes: Any) -> Path:
    """FaceNet's ONNX network described as an operator would describe a model of theirs."""
    folder.mkdir(parents=True, exist_ok=True)
    model = folder / "standin.onnx"
    shutil.copyfile(onnx_dir(analyzer.settings.models_path) / FACENET_FILE, model)
    card = {
        "name": "facenet-standin",
        "file": model.name,
        "sha256": sha256_file(model),
        "input_size": 160,
        "layout": "nhwc",
        "colour": "rgb",
        "normalisation": "prewhiten",
        "alignment": "box",
        "margin": 0.1,
        "mirror": True,
        "dimension": 128,
        "licence": "MIT (David Sandberg's facenet weights), a test stand-in",
    }
    card.update(changes)
    path = folder / "card.json"
    path.write_text(json.dumps(card))
    return path


def test_an_operators_recogniser_is_checked_installed_and_served(
    tmp_path: Path, analyzer: FaceAnalyzer, celebrity: Path, own_models: Path
) -> None:
    settings = Settings(data_dir=tmp_path / "data", model_dir=own_models)
    running = FaceAnalyzer(settings)  # a service started before the recogniser was added
    installed, checked = add_recogniser(standin_card(tmp_path / "supplied", analyzer), settings)
    assert installed.model == own_models / "recognisers" / "facenet-standin" / "standin.onnx"
    assert checked.persons == 5 and checked.rank1 >= 0.9
    assert checked.same_median > checked.stranger_median
    assert checked.estimated and installed.card.match_threshold is not None
    saved = json.loads((installed.model.parent / "card.json").read_text())
    assert saved["candidate_threshold"] == installed.card.candidate_threshold

    # Chosen by name, it embeds through the recipe mechanism: the same network fed the same
    # chip as the built-in recipe, so the same embedding.
    standin = FaceAnalyzer(settings.model_copy(update={"recipe": "facenet-standin"}))
    assert standin.model_version.startswith("onnx/facenet-standin-")
    photo = photos(celebrity / "val")["madonna"][0].read_bytes()
    ours = standin.analyze(photo)[0].embedding
    analyzer.use(FACENET.version)
    try:
        assert float(ours @ analyzer.analyze(photo)[0].embedding) > 0.9999
    finally:
        analyzer.use(DEFAULT.version)
    # A database moved to it by another process: the running service adopts it too.
    running.use(standin.model_version)
    assert float(running.analyze(photo)[0].embedding @ ours) > 0.9999

    # An empty database takes it; search finds the enrolled person.
    url = f"sqlite:///{tmp_path / 'standin.sqlite3'}"
    upgrade(url)
    db = model_services(url, tmp_path / "db", standin)
    ids = enroll(db, photos(celebrity / "train"), ["madonna", "ben_afflek"])
    assert stored_versions(db) == {standin.model_version}
    assert db.search.rank([ours], 2, 1.0, SearchFilters())[0][0].person.id == ids["madonna"]
    db.close()

    with pytest.raises(ModelInstallError, match="is installed already"):
        add_recogniser(standin_card(tmp_path / "again", analyzer), settings)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("dimension", "the model gives 128 values per face; the card says 512"),
        ("checksum", "its sha256 is .* the card says 0000"),
        ("not a model", "is not a model ONNX Runtime can load"),
        ("layout", r"mean \['batch', 3, 160, 160\]. Correct the card's layout or input_size"),
        ("name", "the name 'facenet' is a built-in recipe's"),
        ("colour", "colour 'grey' is not one of 'rgb', 'bgr'"),
        ("no licence", "the card lacks licence"),
    ],
)
def test_a_wrong_card_is_refused_saying_why_and_nothing_is_installed(
    case: str, expected: str, tmp_path: Path, analyzer: FaceAnalyzer, own_models: Path
) -> None:
    supplied = tmp_path / "supplied"
    card = standin_card(supplied, analyzer)
    raw = json.loads(card.read_text())
    if case == "dimension":
        raw["dimension"] = 512
    elif case == "checksum":
        raw["sha256"] = "0" * 64
    elif case == "not a model":
        (supplied / "standin.onnx").write_text("a text file, named like a model")
        raw["sha256"] = sha256_file(supplied / "standin.onnx")
    elif case == "layout":
        raw["layout"] = "nchw"
    elif case == "name":
        raw["name"] = "facenet"
    elif case == "colour":
        raw["colour"] = "grey"
    else:
        del raw["licence"]
    card.write_text(json.dumps(raw))
    settings = Settings(data_dir=tmp_path / "data", model_dir=own_models)
    with pytest.raises(ModelInstallError, match=expected):
        add_recogniser(card, settings)
    folder = own_models / "recognisers"
    assert not folder.exists() or list(folder.iterdir()) == []  # nothing, not even a leftover


def test_models_add_on_the_command_line(
    tmp_path: Path, analyzer: FaceAnalyzer, own_models: Path
) -> None:
    card = standin_card(tmp_path / "supplied", analyzer, dimension=512)
    env = {**os.environ, "FACEDB_MODEL_DIR": str(own_models), "FACEDB_DATA_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "facedb.cli", "models", "add", str(card)]
    refused = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines()[-1] == (
        "error: the model gives 128 values per face; the card says 512. "
        "Correct the card's dimension."
    )
    standin_card(tmp_path / "supplied", analyzer)
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "installed facenet-standin" in done.stdout
    assert "use it: set FACEDB_RECIPE=facenet-standin (and restart" in done.stdout
    listed = subprocess.run([sys.executable, "-m", "facedb.cli", "models", "status"],
                            capture_output=True, text=True, env=env, timeout=600)  # fmt: skip
    assert "facenet-standin" in listed.stdout


# --- the young/adult evaluation mode --------------------------------------------------------
def test_the_young_adult_mode_enrolls_every_young_photo_and_searches_every_adult_one(
    tmp_path: Path, analyzer: FaceAnalyzer, celebrity: Path
) -> None:
    """The Large Age-Gap layout made from the celebrity photos: PERSON/* searched,
    PERSON/y/* enrolled (here two training photos stand in for the childhood ones)."""
    root = tmp_path / "lag"
    train, val = photos(celebrity / "train"), photos(celebrity / "val")
    for name in train:
        (root / name / "y").mkdir(parents=True)
        for path in train[name][:2]:
            shutil.copy(path, root / name / "y" / path.name)
        for path in val[name]:
            shutil.copy(path, root / name / path.name)
    settings = Settings(data_dir=tmp_path / "data", model_dir=analyzer.settings.models_path)
    config = protocol.EvalConfig(young="y", bootstrap=200, progress=False)
    report = protocol.run(root, settings, config, analyzer)
    assert report["protocol"] == "young-adult"
    assert report["gallery"] == {"persons": 5, "photos": 10}
    assert report["probes"]["mated"] == sum(len(v) for v in val.values())
    rank1 = report["ranks"]["1"]
    assert rank1["low"] <= rank1["value"] <= rank1["high"] and rank1["value"] >= 0.8
    assert report["model_version"] == DEFAULT.version
    # Ten adult faces cannot give an age axis: the evaluation says so rather than measure.
    axis = protocol.EvalConfig(young="y", progress=False, remove_age_axis=True)
    with pytest.raises(AgeAxisRefused, match="at least 200 faces with an age"):
        protocol.run(root, settings, axis, analyzer)
    assert analyzer.model_version == DEFAULT.version

    only = tmp_path / "ids.txt"
    only.write_text("madonna\nelton_john\n")
    plan = protocol.plan(root, protocol.EvalConfig(young="y", only=only))
    assert set(plan.gallery) == {"madonna", "elton_john"}
    only.write_text("madonna\nnobody_here\n")
    with pytest.raises(InvalidInput, match="1 of the persons named are not in"):
        protocol.plan(root, protocol.EvalConfig(young="y", only=only))

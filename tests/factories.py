"""Small typed helpers that build databases, services, persons and synthetic faces."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from numpy.typing import NDArray
from sqlalchemy.orm import Session

from facedb.config import Settings
from facedb.pipeline.analyzer import FaceAnalyzer
from facedb.pipeline.base import Analyzer
from facedb.pipeline.embed import MODEL_NAME
from facedb.services.uploads import Upload
from facedb.store.db import upgrade
from facedb.store.embeddings import Embedded
from facedb.store.photos import NewFace, NewPhoto, PhotoRepository
from facedb.wiring import Services, build
from tests.conftest import REPO
from tests.fakes import FAKE_RECIPE, FakeAnalyzer

POSTGRES_URL = os.environ.get(
    "FACEDB_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def postgres_reachable() -> str | None:
    """Return None when the test PostgreSQL answers, else what went wrong."""
    engine = sa.create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg2://"))
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
        return None
    except sa.exc.OperationalError as exc:
        return str(exc.orig).strip().splitlines()[0]
    finally:
        engine.dispose()


@contextmanager
def postgres_schema() -> Iterator[str]:
    """Yield a URL whose search_path is a fresh schema, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg2://"))
    try:
        with admin.begin() as connection:
            connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
    except sa.exc.OperationalError as exc:
        raise RuntimeError(
            f"PostgreSQL at {POSTGRES_URL} is unreachable ({exc.orig}); start it "
            "(`make postgres`) or point FACEDB_TEST_POSTGRES_URL at one"
        ) from exc
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@contextmanager
def database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'facedb.sqlite3'}"
    else:
        with postgres_schema() as url:
            yield url


def make_settings(tmp_path: Path, url: str, **overrides: Any) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=url, **overrides)


def started(settings: Settings, migrate: bool = True, analyzer: Analyzer | None = None) -> Services:
    """Return started services (index served, models not loaded); the fake analyzer
    unless one is given."""
    if migrate:
        upgrade(settings.database_url)
    services = build(settings, analyzer or FakeAnalyzer(settings))
    services.start(load_models=False)
    return services


def model_services(url: str, folder: Path, analyzer: FaceAnalyzer) -> Services:
    """Started, migrated services at ``url`` sharing the session's loaded models."""
    settings = make_settings(folder, url, model_dir=analyzer.settings.models_path)
    return started(settings, analyzer=analyzer)


def unit_vectors(n: int, seed: int, dimension: int = 128) -> NDArray[np.float32]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dimension)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def add_person(services: Services, name: str = "Test Person", **fields: Any) -> str:
    return services.persons.create({"name": name, **fields}).id


def stage_face(session: Session, person_id: str, vector: NDArray[np.float32]) -> int:
    """Insert a photo with one face of ``vector`` (fake bytes) in an open session; return
    the face id (nothing is committed)."""
    content = uuid.uuid4().bytes
    photo = NewPhoto(person_id, hashlib.sha256(content).hexdigest(), content, "image/jpeg",
                     1, 1, None, None)  # fmt: skip
    face = NewFace((0, 0, 1, 1), {}, 1.0, None, None, None, b"", vector)
    record = PhotoRepository(session).add(
        photo, [face], Embedded(1, MODEL_NAME, FAKE_RECIPE.version)
    )
    return record.faces[0].id


def add_synthetic_faces(
    services: Services, person_id: str, vectors: NDArray[np.float32]
) -> list[int]:
    """Store one photo per vector (fake bytes), committed; return the new face ids."""
    with services.store.unit() as unit:
        generation, _ = unit.generations.lock()
        ids = []
        for vector in vectors:
            content = uuid.uuid4().bytes
            photo = NewPhoto(person_id, hashlib.sha256(content).hexdigest(), content,
                             "image/jpeg", 1, 1, None, None)  # fmt: skip
            face = NewFace((0, 0, 1, 1), {}, 1.0, None, None, None, b"", vector)
            embedded = Embedded(generation, MODEL_NAME, FAKE_RECIPE.version)
            ids.append(unit.photos.add(photo, [face], embedded).faces[0].id)
    return ids


def enroll_bytes(services: Services, person_id: str, *photos: bytes, taken_at: Any = None) -> Any:
    """Enroll photos given as bytes; return the report."""
    uploads = [Upload(f"p{i}.png", io.BytesIO(data), taken_at) for i, data in enumerate(photos)]
    return services.enrollment.enroll(person_id, uploads)


def database_face_ids(services: Services) -> set[int]:
    with services.store.engine.connect() as connection:
        return {int(i) for i in connection.execute(sa.text("SELECT id FROM faces")).scalars()}


def index_ids(services: Services) -> set[int]:
    return set(services.index.ids().tolist())


def table_counts(services: Services) -> tuple[int, ...]:
    with services.store.engine.connect() as connection:
        return tuple(
            int(connection.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one())
            for t in ("persons", "photos", "faces", "embeddings")
        )


def on_milvus_server(uri: str) -> dict[str, str]:
    """Settings for a collection on the Milvus server at ``uri``, under a prefix of its own
    (the tests of a session share the one server)."""
    return {"milvus_uri": uri, "milvus_collection": f"t_{uuid.uuid4().hex[:12]}"}


def eventually(check: Callable[[], bool], seconds: float = 20.0, every: float = 0.1) -> float:
    """Wait until ``check()`` holds, failing the test after ``seconds``; return how long it
    took."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < seconds, f"not so after {seconds} s"
        time.sleep(every)
    return time.monotonic() - start


def run_facedb(env: dict[str, str], *args: str) -> str:
    """Run `facedb ARGS` on the fake analyzer in a subprocess; return its standard output
    (a failing command fails the test with its error output)."""
    command = [sys.executable, "-m", "tests.integration._fake_cli", *args]
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout

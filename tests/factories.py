"""Small typed helpers that build databases, persons and synthetic faces for tests."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from numpy.typing import NDArray

from facedb.config import Settings
from facedb.pipeline.analyzer import FaceAnalyzer
from facedb.pipeline.embed import MODEL_NAME
from facedb.pipeline.recipes import CURRENT
from facedb.service.context import FaceDB
from facedb.store import repository as repo
from facedb.store.db import transaction, upgrade
from facedb.store.models import Photo

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


def make_settings(tmp_path: Path, url: str, **overrides: object) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=url, **overrides)  # type: ignore[arg-type]


def started_db(
    settings: Settings, migrate: bool = True, analyzer: FaceAnalyzer | None = None
) -> FaceDB:
    if migrate:
        upgrade(settings.database_url)
    db = FaceDB(settings, analyzer)
    db.start(load_models=False)
    return db


def model_db(url: str, folder: Path, analyzer: FaceAnalyzer) -> FaceDB:
    """A started, migrated database at ``url`` sharing the session's loaded models."""
    settings = make_settings(folder, url, model_dir=analyzer.settings.models_path)
    return started_db(settings, analyzer=analyzer)


def unit_vectors(n: int, seed: int, dimension: int = 128) -> NDArray[np.float32]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dimension)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def add_person(db: FaceDB, name: str = "Test Person", **fields: object) -> str:
    with transaction(db.sessions) as session:
        return repo.add_person(session, name=name, **fields).id


def add_synthetic_faces(db: FaceDB, person_id: str, vectors: NDArray[np.float32]) -> list[int]:
    """Store one photo per vector (fake bytes) and return the new face ids."""
    ids: list[int] = []
    with transaction(db.sessions) as session:
        generation, _ = repo.lock_generation(session)
        for vector in vectors:
            content = uuid.uuid4().bytes
            photo = Photo(
                person_id=person_id,
                sha256=hashlib.sha256(content).hexdigest(),
                content=content,
                media_type="image/jpeg",
                width=1,
                height=1,
            )
            face = repo.NewFace(
                box=(0, 0, 1, 1),
                landmarks={},
                confidence=1.0,
                age=None,
                gender=None,
                gender_probability=None,
                crop_jpeg=b"",
                embedding=vector,
            )
            rows = repo.add_photo(session, photo, [face], generation, MODEL_NAME, CURRENT.version)
            ids.extend(r.id for r in rows)
    return ids


def database_face_ids(db: FaceDB) -> set[int]:
    with transaction(db.sessions) as session:
        return {int(i) for i in session.execute(sa.text("SELECT id FROM faces")).scalars()}

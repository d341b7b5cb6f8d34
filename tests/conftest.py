"""Shared fixtures: settings in a temporary data folder, the real models, the sample photos."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from facedb.config import Settings, get_settings
from facedb.models.sample_data import celebrity_dataset
from facedb.models.status import model_status

REPO = Path(__file__).resolve().parent.parent


def installed_model_dir() -> Path:
    """Return the model folder `make models` filled (FACEDB_MODEL_DIR, else the default)."""
    explicit = os.environ.get("FACEDB_MODEL_DIR")
    return Path(explicit).resolve() if explicit else Settings().models_path


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the PostgreSQL tests, saying why, when no server answers (unless required)."""
    if os.environ.get("FACEDB_REQUIRE_POSTGRES") or not any(
        "postgres" in i.keywords for i in items
    ):
        return
    from tests.factories import postgres_reachable

    problem = postgres_reachable()
    if problem is None:
        return
    skip = pytest.mark.skip(
        reason=f"PostgreSQL unreachable ({problem}); start it (`make postgres`) or point "
        "FACEDB_TEST_POSTGRES_URL at one. `make test` requires it."
    )
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


def cache_dir() -> Path:
    return Settings().cache_dir


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Point every test's default settings at its own data folder, sharing the models."""
    for name in list(os.environ):
        if name.startswith("FACEDB_") and name not in {"FACEDB_MODEL_DIR", "FACEDB_CACHE_DIR"}:
            monkeypatch.delenv(name)
    monkeypatch.setenv("FACEDB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FACEDB_MODEL_DIR", str(installed_model_dir()))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def model_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings whose model folder holds every installed model (fails if not installed)."""
    model_dir = installed_model_dir()
    bad = [s for s in model_status(model_dir) if not s.valid]
    if bad:
        pytest.fail(f"models missing under {model_dir}: {[s.name for s in bad]}; run `make models`")
    return Settings(data_dir=tmp_path_factory.mktemp("models-data"), model_dir=model_dir)


@pytest.fixture(scope="session")
def analyzer(model_settings: Settings):  # type: ignore[no-untyped-def]
    from facedb.pipeline.analyzer import FaceAnalyzer

    instance = FaceAnalyzer(model_settings)
    instance.load()
    return instance


@pytest.fixture(scope="session")
def celebrity() -> Path:
    """The 5-celebrity set: ``train/<person>/*.jpg`` and ``val/<person>/*.jpg``."""
    return celebrity_dataset(cache_dir())


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Milvus standalone server for this test session (worker); yields its URI."""
    from tests.milvus_server import EmbeddedMilvus, available

    if not available():
        pytest.skip("the `milvus` package is missing: `make install-dev` installs it")
    from tests.api.conftest import free_port

    server = EmbeddedMilvus(tmp_path_factory.mktemp("milvus-server"), free_port(), free_port())
    server.start()
    yield server.uri
    server.stop()

"""A real uvicorn server on a loopback port, over SQLite or PostgreSQL, with the real models."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from api.app import create_app, uvicorn_config
from facedb.pipeline.analyzer import FaceAnalyzer
from facedb.service.context import FaceDB
from facedb.service.keys import create_key
from facedb.store.db import upgrade
from tests.factories import database_url, make_settings

# Database, and "+milvus" where the index is a Milvus (Lite) collection instead of FAISS.
BACKENDS = [
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("postgres+milvus", marks=pytest.mark.postgres),
]


@dataclass
class Server:
    """A running service: its base URL, its context, and one key per role."""

    url: str
    db: FaceDB
    keys: dict[str, str]

    def client(self, role: str | None = "admin") -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.keys[role]}"} if role else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=120)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, analyzer: FaceAnalyzer
) -> Iterator[Server]:
    database, _, index = str(request.param).partition("+")
    tmp = tmp_path_factory.mktemp(f"api-{database}-{index or 'faiss'}")
    with database_url(database, tmp) as url:
        settings = make_settings(
            Path(tmp),
            url,
            model_dir=analyzer.settings.models_path,
            max_image_bytes=2_000_000,
            index_backend=index or "faiss",
        )
        upgrade(url)
        db = FaceDB(settings, analyzer=analyzer)
        keys = {
            role: create_key(db, role, f"test-{role}")[1]
            for role in ("admin", "enroller", "searcher", "reviewer")
        }
        port = free_port()
        config = uvicorn_config(create_app(settings, db), settings, port=port, log_level="warning")
        uv = uvicorn.Server(config)
        thread = threading.Thread(target=uv.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 120
        while not uv.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.05)
        try:
            yield Server(f"http://127.0.0.1:{port}", db, keys)
        finally:
            uv.should_exit = True
            thread.join(timeout=30)

"""Real uvicorn servers on loopback ports, over SQLite, PostgreSQL, PostgreSQL + Milvus Lite.

One server per backend per test session. ``server`` runs on the deterministic fake analyzer
(tests/fakes.py), so route, auth, hardening, casework and console tests need no networks;
``model_server`` runs the real models, for the end-to-end pass. The servers are shared by
every module of the session: a test makes its own persons (unique case numbers) and
never assumes an empty database.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from api.app import create_app, uvicorn_config
from facedb.domain import Role
from facedb.pipeline.analyzer import FaceAnalyzer
from facedb.pipeline.base import Analyzer
from facedb.store.db import upgrade
from facedb.wiring import Services, build
from tests.conftest import REPO, installed_model_dir
from tests.factories import database_url, make_settings, on_milvus_server
from tests.fakes import FakeAnalyzer

# Database, and "+milvus" where the index is a Milvus Lite collection instead of FAISS,
# "+milvus-server" a collection on a real Milvus standalone server (one per test session).
BACKENDS = [
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("postgres+milvus", marks=pytest.mark.postgres),
    pytest.param("postgres+milvus-server", marks=[pytest.mark.postgres, pytest.mark.milvus_server]),
]


@dataclass
class Server:
    """A running service: its base URL, its services, and one key per role."""

    url: str
    services: Services
    keys: dict[str, str]

    def client(self, role: str | None = "admin") -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.keys[role]}"} if role else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=120)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unique(prefix: str) -> str:
    """A case number no other test of the session uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


MAX_REQUEST_BYTES = 8 * 1024 * 1024  # the test servers' body cap (FACEDB_MAX_REQUEST_BYTES)


def serve(
    backend: str,
    folder: Path,
    make_analyzer: type[FakeAnalyzer] | Analyzer,
    keyed: bool = True,
    url: str | None = None,
    **overrides: Any,
) -> Iterator[Server]:
    """Run a server on ``backend`` (at ``url`` when given, with these settings) until the
    generator is closed; ``keyed``: one key per role, else keyless local mode."""
    database, _, index = backend.partition("+")
    with database_url(database, folder) if url is None else nullcontext(url) as url:
        settings = make_settings(
            folder,
            url,
            max_image_bytes=2_000_000,
            max_request_bytes=MAX_REQUEST_BYTES,
            index_backend="milvus" if index.startswith("milvus") else "faiss",
            model_dir=installed_model_dir(),
            **overrides,
        )
        upgrade(url)
        analyzer = make_analyzer(settings) if isinstance(make_analyzer, type) else make_analyzer
        services = build(settings, analyzer)
        keys = (
            {role.value: services.keys.create(role, f"test-{role.value}")[1] for role in Role}
            if keyed
            else {}
        )
        port = free_port()
        config = uvicorn_config(create_app(settings, services), settings, port=port,
                                log_level="warning")  # fmt: skip
        uv = uvicorn.Server(config)
        thread = threading.Thread(target=uv.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 120
        while not uv.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.05)
        try:
            yield Server(f"http://127.0.0.1:{port}", services, keys)
        finally:
            uv.should_exit = True
            thread.join(timeout=30)


def raw(server: Server, head: str, body: bytes = b"", read_after: float = 5.0) -> str:
    """Send a request's head and the first bytes of its body on a socket; return the start
    of the answer (a server that reads the whole body first would not answer in time)."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=read_after) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        return sock.recv(8192).decode("latin-1")


@pytest.fixture(scope="session", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server on the fake analyzer, one per backend per session."""
    backend = str(request.param)
    yield from serve(backend, tmp_path_factory.mktemp(f"api-{backend}"), FakeAnalyzer,
                     **milvus_settings(request))  # fmt: skip


@pytest.fixture(scope="session", params=BACKENDS)
def model_server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    analyzer: FaceAnalyzer,
) -> Iterator[Server]:
    """A server on the real models, one per backend per session."""
    backend = str(request.param)
    yield from serve(backend, tmp_path_factory.mktemp(f"models-{backend}"), analyzer,
                     **milvus_settings(request))  # fmt: skip


def milvus_settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    """For the server tier: a collection of this server's own on the session's Milvus."""
    if not str(request.param).endswith("+milvus-server"):
        return {}
    return on_milvus_server(request.getfixturevalue("milvus_server"))


# --- the browser (the console tests) ---------------------------------------------------
ARTIFACTS = REPO / "test-artifacts" / "console"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if CHROMIUM is None:
        pytest.skip(
            "no chromium on this machine: `apt-get install chromium` to run the console tests"
        )
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="`make install` installs playwright"
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield instance
        instance.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(60_000)
    yield tab
    context.close()


def sign_in(page: Any, server: Server, role: str) -> None:
    page.goto(f"{server.url}/console/signin")
    page.get_by_label("API key").fill(server.keys[role])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/console/signin" not in url)  # the role's first page


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

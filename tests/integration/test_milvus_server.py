"""The server tier: FaceDB on a real Milvus standalone server (PyPI's `milvus` package) and
PostgreSQL. Two processes on one server, one of them killed -9 mid-stream; and the server
itself killed -9 under a running service and restarted on the same port and folder: 503
while it is away, writes kept, recovery without a restart of the service."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from facedb.services.search import SearchFilters
from tests.api.conftest import Server, free_port, serve
from tests.conftest import REPO
from tests.factories import (
    database_face_ids,
    eventually,
    index_ids,
    make_settings,
    on_milvus_server,
    postgres_schema,
    started,
    unit_vectors,
)
from tests.fakes import FakeAnalyzer, fake_photo
from tests.milvus_server import EmbeddedMilvus, available

pytestmark = [pytest.mark.postgres, pytest.mark.milvus_server]
RECOVERY_S = 60.0  # the service must answer again within a minute of the server's return


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with postgres_schema() as url:
        yield url


def test_two_processes_share_a_server_and_a_killed_writer_loses_nothing(
    postgres_url: str, tmp_path: Path, milvus_server: str
) -> None:
    shared = {"index_backend": "milvus", **on_milvus_server(milvus_server)}
    reader = started(make_settings(tmp_path / "reader", postgres_url, **shared))
    env = {**os.environ, **{f"FACEDB_{k.upper()}": v for k, v in shared.items()}}
    writer = subprocess.Popen(
        [sys.executable, "-m", "tests.integration._writer", postgres_url,
         str(tmp_path / "writer" / "data"), "30", "11", "--hang"],
        cwd=REPO, stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert writer.stdout is not None
        acknowledged = [int(writer.stdout.readline()) for _ in range(30)]
    finally:
        writer.kill()  # SIGKILL, after its last acknowledged write
        writer.wait(30)
    reader.index.catch_up()  # as every search does first: the writer applied its own
    assert set(acknowledged) <= index_ids(reader)
    assert index_ids(reader) == database_face_ids(reader)
    probe = unit_vectors(30, seed=11)[17]
    found = reader.search.rank([probe], 1, 0.9, SearchFilters())[0]
    assert found and found[0].face.id == acknowledged[17] and found[0].score > 0.99
    reader.close()


@pytest.fixture
def own_milvus(tmp_path: Path) -> Iterator[EmbeddedMilvus]:
    """A Milvus server of this test's own: it is killed and restarted."""
    if not available():
        pytest.skip("the `milvus` package is missing: `make install-dev` installs it")
    server = EmbeddedMilvus(tmp_path / "milvus", free_port(), free_port())
    server.start()
    yield server
    server.stop()


def test_an_outage_answers_503_keeps_writes_and_the_service_recovers_by_itself(
    postgres_url: str, tmp_path: Path, own_milvus: EmbeddedMilvus
) -> None:
    running = serve("postgres+milvus-server", tmp_path / "service", FakeAnalyzer,
                    url=postgres_url, **on_milvus_server(own_milvus.uri))  # fmt: skip
    server: Server = next(running)
    try:
        with server.client("admin") as client:

            def enroll(name: str, identity: int) -> str:
                person = client.post("/v1/persons", json={"name": name}).json()["id"]
                files = [("files", (f"{name}.png", fake_photo(identity, 0), "image/png"))]
                reply = client.post(f"/v1/persons/{person}/photos", files=files)
                assert reply.status_code == 201, reply.text
                return str(person)

            def search(identity: int) -> Any:
                files = {"file": ("probe.png", fake_photo(identity, 1), "image/png")}
                return client.post("/v1/search", files=files, data={"k": "3"})

            def top(identity: int) -> list[str]:
                reply = search(identity)
                assert reply.status_code == 200, reply.text
                return [c["person"]["id"] for c in reply.json()["faces"][0]["candidates"]]

            kept, erased = enroll("Kept", 201), enroll("Erased", 202)
            assert top(201)[0] == kept and top(202)[0] == erased

            own_milvus.kill()
            health = client.get("/v1/health")
            assert health.status_code == 503 and health.json()["status"] == "unavailable"
            index = health.json()["index"]
            assert index["available"] is False and "Milvus is unreachable" in index["error"]
            assert health.json()["database"] is True  # says what is down, and what is not
            refused = search(201)
            assert refused.status_code == 503
            assert refused.json()["error"]["code"] == "index_unavailable"
            assert refused.headers.get("Retry-After")
            # Writes during the outage commit (the database is the system of record) and
            # are applied when the server is back.
            during = enroll("Enrolled during the outage", 203)
            assert client.delete(f"/v1/persons/{erased}").status_code == 204

            own_milvus.start()  # the same port and folder
            took = eventually(lambda: client.get("/v1/health").status_code == 200, RECOVERY_S,
                              every=0.5)  # fmt: skip
            print(f"service answered again {took:.1f} s after Milvus was back")
            assert top(201)[0] == kept
            assert top(203)[0] == during
            assert erased not in top(202)  # the deletion made during the outage is honoured
            assert client.get("/v1/health").json()["index"]["faces"] == 2
    finally:
        running.close()

"""Hardening, second pass (issue 21), on real servers: an outage is a 503, bodies are refused
from their headers, keyless mode answers only its own host and site, every answer carries
the security headers, and a 405 names what the path allows.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from facedb.domain import AuditAction
from tests.api.conftest import BACKENDS, MAX_REQUEST_BYTES, Server, raw, serve
from tests.factories import POSTGRES_URL, table_counts
from tests.fakes import FakeAnalyzer, fake_photo

PHOTO = fake_photo(61, 0)


def person(server: Server) -> str:
    with server.client("enroller") as client:
        return str(client.post("/v1/persons", json={"name": "Shielded"}).json()["id"])


# --- bodies refused from their headers ----------------------------------------------------
def test_a_slow_64_mib_upload_to_a_forbidden_route_is_403_while_still_sending(
    server: Server,
) -> None:
    pid = person(server)
    refused_before = len(server.services.audit.recent(10_000, AuditAction.PHOTO_UPLOAD))
    started = time.monotonic()
    answer = raw(
        server,
        f"POST /v1/persons/{pid}/photos HTTP/1.1\nHost: x\n"
        f"Authorization: Bearer {server.keys['searcher']}\n"
        f"Content-Type: multipart/form-data; boundary=b\nContent-Length: {64 * 1024 * 1024}\n",
        b"--b\r\n" + b"x" * 1024,  # 1 KiB of the promised 64 MiB, then nothing
    )
    assert time.monotonic() - started < 1.0
    assert answer.startswith("HTTP/1.1 403"), answer[:200]
    assert '"forbidden"' in answer
    audited = server.services.audit.recent(10_000, AuditAction.PHOTO_UPLOAD)
    assert len(audited) == refused_before + 1 and audited[0].results == [{"error": "forbidden"}]


def test_an_upload_to_a_person_who_does_not_exist_is_404_before_the_body(server: Server) -> None:
    answer = raw(
        server,
        f"POST /v1/persons/{uuid.uuid4()}/photos HTTP/1.1\nHost: x\n"
        f"Authorization: Bearer {server.keys['enroller']}\n"
        f"Content-Type: multipart/form-data; boundary=b\nContent-Length: {4 * 1024 * 1024}\n",
        b"--b\r\n",
    )
    assert answer.startswith("HTTP/1.1 404"), answer[:200]


def test_a_2_gib_declared_body_is_413_at_once(server: Server, tmp_path: Path) -> None:
    started = time.monotonic()
    answer = raw(
        server,
        f"POST /v1/search HTTP/1.1\nHost: x\nAuthorization: Bearer {server.keys['searcher']}\n"
        f"Content-Type: multipart/form-data; boundary=b\nContent-Length: {2 * 1024**3}\n",
        b"--b\r\n",
    )
    assert time.monotonic() - started < 1.0
    assert answer.startswith("HTTP/1.1 413"), answer[:200]
    assert '"request_too_large"' in answer and "FACEDB_MAX_REQUEST_BYTES" in answer


def test_a_chunked_body_past_the_cap_is_413_and_stores_nothing(server: Server) -> None:
    pid = person(server)
    before = table_counts(server.services)

    def chunks() -> Iterator[bytes]:
        yield b'--b\r\nContent-Disposition: form-data; name="files"; filename="a.png"\r\n'
        yield b"Content-Type: image/png\r\n\r\n"
        for _ in range(MAX_REQUEST_BYTES // 65536 + 4):
            yield b"\0" * 65536

    with server.client("enroller") as client:
        reply = client.post(
            f"/v1/persons/{pid}/photos",
            content=chunks(),
            headers={"Content-Type": "multipart/form-data; boundary=b"},
        )
    assert reply.status_code == 413, reply.text
    assert reply.json()["error"]["code"] == "request_too_large"
    assert table_counts(server.services) == before
    with server.client("enroller") as client:  # the service goes on
        assert client.get(f"/v1/persons/{pid}").status_code == 200


# --- headers ------------------------------------------------------------------------------
def test_every_kind_of_answer_carries_the_security_headers(server: Server) -> None:
    pid = person(server)
    with server.client("admin") as client:
        stored = client.post(
            f"/v1/persons/{pid}/photos", files=[("files", ("s.png", PHOTO, "image/png"))]
        )
        assert stored.status_code == 201, stored.text
        photo = client.get(f"/v1/persons/{pid}/photos").json()[0]
        face = photo["faces"][0]["id"]
        answers = {
            "page": client.get("/console/search"),
            "asset": client.get("/console-assets/js/main.js"),
            "record": client.get(f"/v1/persons/{pid}"),
            "photo": client.get(f"/v1/photos/{photo['id']}/image"),
            "crop": client.get(f"/v1/faces/{face}/crop"),
            "search": client.post("/v1/search", files={"file": ("p.png", PHOTO, "image/png")}),
            "not found": client.get(f"/v1/persons/{uuid.uuid4()}"),
            "no key": httpx.get(f"{server.url}/v1/persons"),
        }
    for kind, reply in answers.items():
        assert reply.headers["x-content-type-options"] == "nosniff", kind
        assert reply.headers["referrer-policy"] == "no-referrer", kind
        policy = reply.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy and "script-src 'self';" in policy, kind
    for kind in ("record", "photo", "crop", "search", "not found", "no key"):
        assert answers[kind].headers["cache-control"] == "no-store", kind
    assert answers["search"].status_code == 200 and answers["photo"].status_code == 200


def test_the_api_docs_allow_only_their_own_inline_script(server: Server) -> None:
    docs = httpx.get(f"{server.url}/docs")
    policy = docs.headers["content-security-policy"]
    assert (
        "'sha256-" in policy
        and "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
    )
    assert "http" not in policy  # nothing from another host


@pytest.mark.parametrize(
    "path", ["/", "/console/search", "/openapi.json", "/docs", "/console-assets/js/main.js"]
)
def test_a_405_names_what_the_path_allows(server: Server, path: str) -> None:
    reply = httpx.delete(f"{server.url}{path}")
    assert reply.status_code == 405
    assert "GET" in reply.headers["allow"].split(", ")


# --- keyless local mode: its own host and site only ----------------------------------------
@pytest.fixture(scope="module", params=BACKENDS[:2])
def keyless(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    backend = str(request.param)
    folder = tmp_path_factory.mktemp(f"keyless-{backend}")
    yield from serve(backend, folder, FakeAnalyzer, keyed=False)


def test_keyless_mode_answers_only_loopback_host_names(keyless: Server) -> None:
    port = keyless.url.rsplit(":", 1)[1]
    for host in (f"localhost:{port}", f"127.0.0.1:{port}"):
        assert httpx.get(f"{keyless.url}/v1/persons", headers={"Host": host}).status_code == 200
    foreign = httpx.get(f"{keyless.url}/v1/persons", headers={"Host": "attacker.example"})
    assert foreign.status_code == 403
    assert foreign.json()["error"]["code"] == "host_not_allowed"
    assert "FACEDB_ALLOWED_HOSTS" in foreign.json()["error"]["message"]


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://attacker.example", "Content-Type": "text/plain"},
        {"Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain"},
        {"Origin": "null", "Content-Type": "text/plain"},
    ],
)
def test_keyless_mode_refuses_cross_site_writes(keyless: Server, headers: dict[str, str]) -> None:
    reply = httpx.post(f"{keyless.url}/v1/admin/crossmatch", headers=headers, content=b"x")
    assert reply.status_code == 403, reply.text
    assert reply.json()["error"]["code"] == "cross_site_write"
    audited = keyless.services.audit.recent(1, AuditAction.CROSSMATCH)[0]  # no job started
    assert audited.results == [{"error": "cross_site_write"}]


def test_keyless_mode_refuses_a_foreign_upload_and_takes_its_own(keyless: Server) -> None:
    with httpx.Client(base_url=keyless.url) as client:
        pid = client.post("/v1/persons", json={"name": "Local"}).json()["id"]
        files = [("files", ("l.png", PHOTO, "image/png"))]
        foreign = client.post(f"/v1/persons/{pid}/photos", files=files,
                              headers={"Origin": "http://attacker.example"})  # fmt: skip
        assert foreign.status_code == 403
        assert client.get(f"/v1/persons/{pid}/photos").json() == []
        same = {"Origin": keyless.url, "Sec-Fetch-Site": "same-origin"}
        own = client.post(f"/v1/persons/{pid}/photos", files=files, headers=same)
        assert own.status_code == 201, own.text


# --- a database outage is a 503, and recovery needs no restart ------------------------------
@contextmanager
def own_database() -> Iterator[tuple[str, Any]]:
    """Yield the URL of a fresh PostgreSQL database and an engine on the admin database."""
    name = f"facedb_outage_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(
        POSTGRES_URL.replace("postgresql://", "postgresql+psycopg2://"),
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as connection:
        connection.execute(sa.text(f"CREATE DATABASE {name}"))
    base = POSTGRES_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}", admin
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
            connection.execute(sa.text(f"DROP DATABASE {name} WITH (FORCE)"))
        admin.dispose()


def _outage(admin: Any, name: str, down: bool) -> None:
    with admin.connect() as connection:
        connection.execute(sa.text(f"ALTER DATABASE {name} ALLOW_CONNECTIONS {not down!s}"))
        if down:
            connection.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"
                ),
                {"n": name},
            )


@pytest.mark.postgres
def test_a_database_outage_is_503_with_a_valid_key_and_recovers(tmp_path: Path) -> None:
    with own_database() as (url, admin):
        name = url.rsplit("/", 1)[1]
        server = next(iter(_served := serve("postgres", tmp_path, FakeAnalyzer, url=url)))
        try:
            with server.client("searcher") as client:
                assert client.get("/v1/persons").status_code == 200
                _outage(admin, name, down=True)
                down = client.get("/v1/persons")
                assert down.status_code == 503, down.text
                assert down.json()["error"]["code"] == "database_unavailable"
                assert "www-authenticate" not in down.headers
                _outage(admin, name, down=False)
                deadline = time.monotonic() + 30
                while (status := client.get("/v1/persons").status_code) != 200:
                    assert time.monotonic() < deadline, status
                    time.sleep(0.5)
        finally:
            _served.close()

"""One Milvus collection shared by two service contexts, as by two processes on a server:
on Milvus Lite and on a real Milvus standalone server (the server tier).

Milvus Lite serves one process per file, so the two contexts live in this process and
share its Lite server; everything between them goes through the database and Milvus, as
between processes.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from facedb.domain import JobKind
from facedb.errors import IndexUnavailable
from facedb.index.milvus_index import MilvusIndex, connect, disconnect
from facedb.services.search import SearchFilters
from facedb.trail.jobs import Job
from facedb.wiring import Services
from tests.conftest import REPO
from tests.factories import (
    add_person,
    add_synthetic_faces,
    database_face_ids,
    index_ids,
    make_settings,
    on_milvus_server,
    started,
    unit_vectors,
)


@pytest.fixture(params=["lite", pytest.param("server", marks=pytest.mark.milvus_server)])
def milvus(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """Where the collection lives: a Milvus Lite file, or the session's Milvus server (with a
    collection prefix of this test's own)."""
    if request.param == "lite":
        return {"milvus_uri": str(tmp_path / "milvus.db")}
    return on_milvus_server(request.getfixturevalue("milvus_server"))


def milvus_db(folder: Path, url: str, milvus: dict[str, str], migrate: bool = False) -> Services:
    settings = make_settings(folder, url, index_backend="milvus", **milvus)
    return started(settings, migrate=migrate)


def collection_of(db: Services) -> str:
    return str(db.index.health()["collection"])


def has_collection(db: Services, name: str) -> bool:
    client = connect(db.settings.milvus_location)
    try:
        return bool(client.has_collection(name))
    finally:
        disconnect(client, db.settings.milvus_location)


def mark(db: Services) -> int:
    with db.store.unit() as unit:
        return unit.marks.read(db.settings.milvus_collection).last_change


def top(db: Services, vector: np.ndarray, k: int, threshold: float) -> list[str]:
    return [c.person.id for c in db.search.rank([vector], k, threshold, SearchFilters())[0]]


@pytest.fixture
def two(url: str, tmp_path: Path, milvus: dict[str, str]) -> Iterator[tuple[Services, Services]]:
    """Two service contexts on one database and one Milvus collection, as two processes."""
    first = milvus_db(tmp_path / "a", url, milvus, migrate=True)
    second = milvus_db(tmp_path / "b", url, milvus)
    yield first, second
    first.close()
    second.close()


def test_two_contexts_share_one_collection(two: tuple[Services, Services]) -> None:
    first, second = two
    assert collection_of(first) == collection_of(second)
    alice, bob = add_person(first, "alice"), add_person(first, "bob")
    vectors = unit_vectors(6, seed=51)
    add_synthetic_faces(first, alice, vectors[:3])
    add_synthetic_faces(first, bob, vectors[3:])
    first.index.catch_up()
    # The second context applies nothing: the mark is shared, the vectors stored once.
    assert second.index.catch_up() == 0
    found = second.search.rank([vectors[0]], 2, 0.9, SearchFilters())[0]
    assert [c.person.id for c in found] == [alice, bob] and found[0].match
    second.persons.delete(alice)  # honoured in the collection before it returns
    assert index_ids(first) == database_face_ids(first) == index_ids(second)
    assert top(first, vectors[0], 2, 0.5) == [bob]
    first.index.catch_up()  # as every search does first
    assert first.index.count == 3


def test_a_crash_mid_apply_leaves_the_mark_and_the_batch_is_repeated(
    url: str, tmp_path: Path, milvus: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = milvus_db(tmp_path, url, milvus, migrate=True)
    person = add_person(db)
    add_synthetic_faces(db, person, unit_vectors(10, seed=52))
    db.index.catch_up()
    before = mark(db)
    new = add_synthetic_faces(db, person, unit_vectors(30, seed=53))
    real_add = MilvusIndex.add

    def add_half_then_die(self: MilvusIndex, ids: np.ndarray, vectors: np.ndarray) -> None:
        real_add(self, ids[:15], vectors[:15])
        raise IndexUnavailable("the process died mid-apply")

    monkeypatch.setattr(MilvusIndex, "add", add_half_then_die)
    with pytest.raises(IndexUnavailable):
        db.index.catch_up()
    assert mark(db) == before  # the mark did not move past what was half applied
    assert set(new[:15]) <= index_ids(db) and not set(new[15:]) & index_ids(db)
    monkeypatch.setattr(MilvusIndex, "add", real_add)
    assert db.index.catch_up() == 30  # the whole batch again: idempotent
    assert index_ids(db) == database_face_ids(db) and db.index.count == 40
    db.close()


def test_a_rebuild_elsewhere_is_followed_and_the_old_collection_dropped(
    two: tuple[Services, Services],
) -> None:
    first, second = two
    person = add_person(first)
    vectors = unit_vectors(20, seed=54)
    add_synthetic_faces(first, person, vectors)
    first.index.catch_up()
    old = collection_of(second)
    first.reindex.run(Job(kind=JobKind.REINDEX, params={}))
    assert collection_of(first) != old
    assert not has_collection(first, old)
    # The second context still points at the dropped collection: its search follows the row.
    assert top(second, vectors[4], 1, 0.9) == [person]
    assert collection_of(second) == collection_of(first)


def test_a_lost_collection_is_rebuilt_on_start(
    url: str, tmp_path: Path, milvus: dict[str, str]
) -> None:
    db = milvus_db(tmp_path, url, milvus, migrate=True)
    add_synthetic_faces(db, add_person(db), unit_vectors(12, seed=55))
    db.index.catch_up()
    client = connect(db.settings.milvus_location)
    client.drop_collection(collection_of(db))  # Milvus lost it (or an operator dropped it)
    disconnect(client, db.settings.milvus_location)
    db.close()
    again = milvus_db(tmp_path, url, milvus)
    assert index_ids(again) == database_face_ids(again) and again.index.count == 12
    again.close()


def test_a_second_process_on_a_lite_file_is_told_what_to_do(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'facedb.sqlite3'}"
    db = milvus_db(tmp_path, url, {"milvus_uri": str(tmp_path / "milvus.db")}, migrate=True)
    probe = (
        f"from facedb.index.milvus_index import connect\nconnect({str(tmp_path / 'milvus.db')!r})\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "IndexUnavailable" in result.stderr and "another process" in result.stderr
    db.close()

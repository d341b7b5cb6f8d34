"""One Milvus collection shared by two service contexts, as by two processes on a server.

Milvus Lite serves one process per file, so the two contexts live in this process and
share its Lite server; everything between them goes through the database and Milvus, as
between processes.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from facedb.errors import IndexUnavailable
from facedb.index.milvus_index import MilvusIndex
from facedb.service.context import FaceDB
from facedb.service.jobs import Job
from facedb.service.persons import delete_person
from facedb.service.reindex import reindex
from facedb.service.search import SearchFilters, rank_identities
from facedb.service.shared_index_sync import SharedIndexSync
from facedb.store import repository as repo
from facedb.store.db import transaction
from tests.conftest import REPO
from tests.factories import (
    add_person,
    add_synthetic_faces,
    database_face_ids,
    make_settings,
    started_db,
    unit_vectors,
)


def milvus_db(folder: Path, url: str, uri: Path, migrate: bool = False) -> FaceDB:
    settings = make_settings(folder, url, index_backend="milvus", milvus_uri=str(uri))
    return started_db(settings, migrate=migrate)


def collection_of(db: FaceDB) -> MilvusIndex:
    assert isinstance(db.index, SharedIndexSync) and db.index.collection is not None
    return db.index.collection


def indexed(db: FaceDB) -> set[int]:
    return set(collection_of(db).ids().tolist())


def mark(db: FaceDB) -> int:
    with transaction(db.sessions) as session:
        return repo.shared_index(session, db.settings.milvus_collection).last_change


def test_two_contexts_share_one_collection(url: str, tmp_path: Path) -> None:
    uri = tmp_path / "milvus.db"
    first = milvus_db(tmp_path / "a", url, uri, migrate=True)
    second = milvus_db(tmp_path / "b", url, uri)
    assert collection_of(first).collection == collection_of(second).collection
    alice, bob = add_person(first, "alice"), add_person(first, "bob")
    vectors = unit_vectors(6, seed=51)
    add_synthetic_faces(first, alice, vectors[:3])
    add_synthetic_faces(first, bob, vectors[3:])
    first.index.apply_committed()
    # The second context applies nothing: the mark is shared, the vectors stored once.
    assert second.index.catch_up() == 0
    top = rank_identities(second, vectors[0], 2, 0.9, SearchFilters())
    assert [c.person.id for c in top] == [alice, bob] and top[0].match
    delete_person(second, alice)  # honoured in the collection before it returns
    assert indexed(first) == database_face_ids(first) == indexed(second)
    assert [c.person.id for c in rank_identities(first, vectors[0], 2, 0.5, SearchFilters())] == [
        bob
    ]
    first.index.catch_up()  # as every search does first
    assert first.index.count == 3
    first.close()
    second.close()


def test_a_crash_mid_apply_leaves_the_mark_and_the_batch_is_repeated(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = milvus_db(tmp_path, url, tmp_path / "milvus.db", migrate=True)
    person = add_person(db)
    add_synthetic_faces(db, person, unit_vectors(10, seed=52))
    db.index.apply_committed()
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
    assert set(new[:15]) <= indexed(db) and not set(new[15:]) & indexed(db)
    monkeypatch.setattr(MilvusIndex, "add", real_add)
    assert db.index.catch_up() == 30  # the whole batch again: idempotent
    assert indexed(db) == database_face_ids(db) and db.index.count == 40
    db.close()


def test_a_rebuild_elsewhere_is_followed_and_the_old_collection_dropped(
    url: str, tmp_path: Path
) -> None:
    uri = tmp_path / "milvus.db"
    first = milvus_db(tmp_path / "a", url, uri, migrate=True)
    second = milvus_db(tmp_path / "b", url, uri)
    person = add_person(first)
    vectors = unit_vectors(20, seed=54)
    add_synthetic_faces(first, person, vectors)
    first.index.apply_committed()
    old = collection_of(second).collection
    reindex(first, Job(kind="reindex", params={}))
    assert collection_of(first).collection != old
    client = collection_of(first).client
    assert not client.has_collection(old)
    # The second context still points at the dropped collection: its search follows the row.
    top = rank_identities(second, vectors[4], 1, 0.9, SearchFilters())
    assert top and top[0].person.id == person
    assert collection_of(second).collection == collection_of(first).collection
    first.close()
    second.close()


def test_a_lost_collection_is_rebuilt_on_start(url: str, tmp_path: Path) -> None:
    uri = tmp_path / "milvus.db"
    db = milvus_db(tmp_path, url, uri, migrate=True)
    add_synthetic_faces(db, add_person(db), unit_vectors(12, seed=55))
    db.index.apply_committed()
    collection_of(db).drop()  # Milvus lost it (or an operator dropped it)
    db.close()
    again = milvus_db(tmp_path, url, uri)
    assert indexed(again) == database_face_ids(again) and again.index.count == 12
    again.close()


def test_a_second_process_on_a_lite_file_is_told_what_to_do(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'facedb.sqlite3'}"
    db = milvus_db(tmp_path, url, tmp_path / "milvus.db", migrate=True)
    probe = (
        f"from facedb.index.milvus_index import connect\nconnect({str(tmp_path / 'milvus.db')!r})\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "IndexUnavailable" in result.stderr and "another process" in result.stderr
    db.close()

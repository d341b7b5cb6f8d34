"""The index stays equal to the database: restarts, kills, corrupt snapshots, two processes.

Tests taking ``backend`` run against both: each process's FAISS index, and the shared
Milvus collection (Milvus Lite here; a Lite file serves one process at a time, so the
two-process test is FAISS's; ``test_shared_index.py`` shares one collection between two
service contexts)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from facedb.domain import IndexBackend
from facedb.service.context import FaceDB
from facedb.service.index_sync import MANIFEST_FILE, SNAPSHOT_FILE
from facedb.service.jobs import Job
from facedb.service.persons import delete_person
from facedb.service.reindex import reindex
from facedb.service.search import SearchFilters, rank_identities
from tests.conftest import REPO
from tests.factories import (
    add_person,
    add_synthetic_faces,
    database_face_ids,
    make_settings,
    started_db,
    unit_vectors,
)


def index_ids(db: FaceDB) -> set[int]:
    return set(db.index.index.ids().tolist())


@pytest.fixture(params=list(IndexBackend))
def backend(request: pytest.FixtureRequest) -> IndexBackend:
    return IndexBackend(request.param)


def test_enrollment_and_deletion_reach_the_index_before_returning(
    url: str, tmp_path: Path, backend: IndexBackend
) -> None:
    db = started_db(make_settings(tmp_path, url, index_backend=backend))
    alice, bob = add_person(db, "alice"), add_person(db, "bob")
    vectors = unit_vectors(4, seed=2)
    add_synthetic_faces(db, alice, vectors[:2])
    add_synthetic_faces(db, bob, vectors[2:])
    db.index.apply_committed()
    assert index_ids(db) == database_face_ids(db)
    top = rank_identities(db, vectors[0], k=5, threshold=0.5, filters=SearchFilters())
    assert [c.person.id for c in top][:1] == [alice] and len(top) == 2  # persons, not photos
    assert top[0].match and top[0].score == pytest.approx(1.0, abs=1e-5)
    delete_person(db, alice)
    assert index_ids(db) == database_face_ids(db)
    assert [c.person.id for c in rank_identities(db, vectors[0], 5, 0.5, SearchFilters())] == [bob]
    db.close()


def test_restart_loads_the_snapshot_and_catches_up(
    url: str, tmp_path: Path, backend: IndexBackend
) -> None:
    settings = make_settings(tmp_path, url, index_backend=backend)
    db = started_db(settings)
    person = add_person(db)
    add_synthetic_faces(db, person, unit_vectors(50, seed=3))
    db.index.apply_committed()
    db.index.save()
    add_synthetic_faces(db, person, unit_vectors(20, seed=4))  # after the snapshot
    db.engine.dispose()  # no close(): the snapshot stays behind
    again = started_db(settings, migrate=False)
    assert again.index.count == 70
    assert index_ids(again) == database_face_ids(again)
    again.close()


def test_killed_writer_loses_nothing_acknowledged(
    url: str, tmp_path: Path, backend: IndexBackend
) -> None:
    settings = make_settings(tmp_path, url, index_backend=backend)
    started_db(settings).close()
    writer = subprocess.Popen(
        [sys.executable, "-m", "tests.integration._writer", url, str(settings.data_dir),
         "40", "7", "--save-at", "10", "--hang"],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "FACEDB_INDEX_BACKEND": backend},
    )  # fmt: skip
    assert writer.stdout is not None
    acknowledged = [int(writer.stdout.readline()) for _ in range(40)]
    writer.kill()  # SIGKILL: no snapshot save, no clean shutdown
    writer.wait()
    db = started_db(settings, migrate=False)
    assert set(acknowledged) <= index_ids(db)
    assert index_ids(db) == database_face_ids(db)
    db.close()


def test_two_processes_see_each_others_writes(url: str, tmp_path: Path) -> None:
    reader = started_db(make_settings(tmp_path / "reader", url))
    other_dir = tmp_path / "writer" / "data"
    result = subprocess.run(
        [sys.executable, "-m", "tests.integration._writer", url, str(other_dir), "15", "9"],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    written = {int(line) for line in result.stdout.split()}
    reader.index.catch_up()
    assert written <= index_ids(reader)
    probe = unit_vectors(15, seed=9)[3]
    assert rank_identities(reader, probe, 1, 0.9, SearchFilters())[0].match
    person = add_person(reader, "reader's own")
    mine = add_synthetic_faces(reader, person, unit_vectors(1, seed=10))
    writer_view = started_db(make_settings(tmp_path / "writer", url), migrate=False)
    assert set(mine) <= index_ids(writer_view)
    reader.close()
    writer_view.close()


def test_corrupt_snapshot_is_discarded_and_rebuilt(
    url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(tmp_path, url)
    db = started_db(settings)
    add_synthetic_faces(db, add_person(db), unit_vectors(30, seed=5))
    db.close()
    (settings.index_dir / SNAPSHOT_FILE).write_bytes(b"garbage" * 100)
    with caplog.at_level(logging.WARNING):
        again = started_db(settings, migrate=False)
    assert "corrupt" in caplog.text
    assert index_ids(again) == database_face_ids(again)
    again.close()


def test_snapshot_of_another_model_version_is_discarded(
    url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(tmp_path, url)
    db = started_db(settings)
    add_synthetic_faces(db, add_person(db), unit_vectors(5, seed=6))
    db.close()
    manifest_path = settings.index_dir / MANIFEST_FILE
    manifest = json.loads(manifest_path.read_text())
    manifest["model_version"] = "some-older-model"
    manifest["count"] = 999
    manifest_path.write_text(json.dumps(manifest))
    with caplog.at_level(logging.WARNING):
        again = started_db(settings, migrate=False)
    assert "some-older-model" in caplog.text
    assert again.index.count == 5
    again.close()


def test_reindex_while_searches_run(url: str, tmp_path: Path, backend: IndexBackend) -> None:
    db = started_db(make_settings(tmp_path, url, index_backend=backend))
    people = [add_person(db, f"p{i}") for i in range(20)]
    vectors = unit_vectors(400, seed=8)
    for i, person in enumerate(people):
        add_synthetic_faces(db, person, vectors[i * 20 : (i + 1) * 20])
    db.index.apply_committed()
    failures: list[str] = []
    stop = threading.Event()

    def searcher() -> None:
        n = 0
        while not stop.is_set():
            i = n % 400
            top = rank_identities(db, vectors[i], 1, 0.9, SearchFilters())
            if not top or top[0].person.id != people[i // 20]:
                failures.append(f"query {i} got {top[:1]}")
            n += 1

    threads = [threading.Thread(target=searcher) for _ in range(3)]
    for t in threads:
        t.start()
    job = Job(kind="reindex", params={})
    for _ in range(3):
        reindex(db, job)
    stop.set()
    for t in threads:
        t.join()
    assert failures == []
    assert job.counts["indexed"] == 400
    assert index_ids(db) == database_face_ids(db)
    db.close()


def test_ivf_index_kind_serves_search(url: str, tmp_path: Path) -> None:
    db = started_db(make_settings(tmp_path, url, index_kind="ivf", index_ivf_nlist=8))
    person = add_person(db)
    vectors = unit_vectors(400, seed=11)
    add_synthetic_faces(db, person, vectors)
    db.index.rebuild()
    assert db.index.index.kind == "ivf"
    top = rank_identities(db, vectors[7], 1, 0.9, SearchFilters())
    assert top and top[0].person.id == person
    assert np.isclose(top[0].score, 1.0, atol=1e-5)
    db.close()


@pytest.mark.postgres
def test_changes_committed_out_of_order_are_not_missed(
    tmp_path: Path, backend: IndexBackend
) -> None:
    """PostgreSQL hands out change ids at insert time, so id N can commit after id N+1."""
    import hashlib
    import uuid

    from facedb.pipeline.embed import MODEL_NAME
    from facedb.pipeline.recipes import CURRENT
    from facedb.store import repository as repo
    from facedb.store.models import Photo
    from tests.factories import postgres_schema

    def stage(db: FaceDB, person: str, vector: np.ndarray):  # type: ignore[no-untyped-def]
        """Insert a face in an open transaction; return the session (not committed)."""
        session = db.sessions()
        content = uuid.uuid4().bytes
        photo = Photo(person_id=person, sha256=hashlib.sha256(content).hexdigest(),
                      content=content, media_type="image/jpeg", width=1, height=1)  # fmt: skip
        face = repo.NewFace((0, 0, 1, 1), {}, 1.0, None, None, None, b"", vector)
        repo.add_photo(session, photo, [face], 1, MODEL_NAME, CURRENT.version)
        return session

    with postgres_schema() as url:
        db = started_db(make_settings(tmp_path, url, index_backend=backend))
        person = add_person(db)
        slow, fast = unit_vectors(2, seed=21)
        slow_session = stage(db, person, slow)  # takes the lower change id, commits last
        fast_session = stage(db, person, fast)
        fast_session.commit()
        db.index.catch_up()
        assert db.index.count == 1
        slow_session.commit()
        db.index.catch_up()
        assert db.index.count == 2
        assert index_ids(db) == database_face_ids(db)
        slow_session.close()
        fast_session.close()
        db.close()


@pytest.mark.postgres
def test_a_change_committing_during_a_fresh_rebuild_is_not_lost(
    tmp_path: Path, backend: IndexBackend
) -> None:
    """A lower change id still in flight when a fresh process rebuilds is kept as a gap."""
    import hashlib
    import uuid

    from facedb.pipeline.embed import MODEL_NAME
    from facedb.pipeline.recipes import CURRENT
    from facedb.store import repository as repo
    from facedb.store.models import Photo
    from tests.factories import postgres_schema

    # Both contexts use one Milvus (Lite) file, as two processes would one Milvus server.
    shared = {"index_backend": backend, "milvus_uri": str(tmp_path / "milvus.db")}
    with postgres_schema() as url:
        writer = started_db(make_settings(tmp_path / "w", url, **shared))
        person = add_person(writer)
        slow, fast = unit_vectors(2, seed=31)
        session = writer.sessions()  # takes the lower change id and commits last
        content = uuid.uuid4().bytes
        photo = Photo(person_id=person, sha256=hashlib.sha256(content).hexdigest(),
                      content=content, media_type="image/jpeg", width=1, height=1)  # fmt: skip
        face = repo.NewFace((0, 0, 1, 1), {}, 1.0, None, None, None, b"", slow)
        repo.add_photo(session, photo, [face], 1, MODEL_NAME, CURRENT.version)
        add_synthetic_faces(writer, person, fast[None, :])  # the higher id, committed now

        fresh = started_db(make_settings(tmp_path / "r", url, **shared), migrate=False)  # rebuilds
        assert fresh.index.count == 1
        fresh.index.rebuild()  # and again: the gap survives a rebuild
        session.commit()
        session.close()
        fresh.index.catch_up()
        assert index_ids(fresh) == database_face_ids(fresh)
        assert fresh.index.count == 2
        fresh.close()
        writer.close()


def test_searches_do_not_wait_for_a_snapshot_write(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from facedb.service import index_sync

    db = started_db(make_settings(tmp_path, url))
    person = add_person(db)
    add_synthetic_faces(db, person, unit_vectors(5, seed=41))
    db.index.apply_committed()
    writing, release = threading.Event(), threading.Event()
    real_write = index_sync._write_atomically

    def slow_write(path: Path, data: bytes) -> None:
        writing.set()
        assert release.wait(30)
        real_write(path, data)

    monkeypatch.setattr(index_sync, "_write_atomically", slow_write)
    saver = threading.Thread(target=db.index.save)
    saver.start()
    assert writing.wait(30)
    searched: list[int] = []

    def searcher() -> None:
        ranked = rank_identities(db, unit_vectors(1, seed=41)[0], 1, 0.5, SearchFilters())
        searched.append(len(ranked))

    thread = threading.Thread(target=searcher)
    thread.start()
    thread.join(30)  # returns while the snapshot is still being written
    finished_during_write = not thread.is_alive() and not release.is_set()
    release.set()
    saver.join(30)
    assert finished_during_write and searched == [1]
    assert (db.settings.index_dir / SNAPSHOT_FILE).is_file()
    db.close()

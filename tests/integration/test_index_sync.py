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
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from facedb.config import Settings
from facedb.domain import IndexBackend, JobKind
from facedb.index.local_home import MANIFEST_FILE, SNAPSHOT_FILE
from facedb.services.search import Candidate, SearchFilters
from facedb.trail.jobs import Job
from facedb.wiring import Services
from tests.conftest import REPO
from tests.factories import (
    add_person,
    add_synthetic_faces,
    database_face_ids,
    index_ids,
    make_settings,
    stage_face,
    started,
    unit_vectors,
)


def ranked(services: Services, vector: np.ndarray, k: int, threshold: float) -> list[Candidate]:
    return services.search.rank([vector], k, threshold, SearchFilters())[0]


@pytest.fixture(params=list(IndexBackend))
def backend(request: pytest.FixtureRequest) -> IndexBackend:
    return IndexBackend(request.param)


def test_enrollment_and_deletion_reach_the_index_before_returning(
    url: str, tmp_path: Path, backend: IndexBackend
) -> None:
    db = started(make_settings(tmp_path, url, index_backend=backend))
    alice, bob = add_person(db, "alice"), add_person(db, "bob")
    vectors = unit_vectors(4, seed=2)
    add_synthetic_faces(db, alice, vectors[:2])
    add_synthetic_faces(db, bob, vectors[2:])
    db.index.catch_up()
    assert index_ids(db) == database_face_ids(db)
    top = ranked(db, vectors[0], 5, 0.5)
    assert [c.person.id for c in top][:1] == [alice] and len(top) == 2  # persons, not photos
    assert top[0].match and top[0].score == pytest.approx(1.0, abs=1e-5)
    db.persons.delete(alice)
    assert index_ids(db) == database_face_ids(db)
    assert [c.person.id for c in ranked(db, vectors[0], 5, 0.5)] == [bob]
    db.close()


def test_restart_loads_the_snapshot_and_catches_up(
    url: str, tmp_path: Path, backend: IndexBackend
) -> None:
    settings = make_settings(tmp_path, url, index_backend=backend)
    db = started(settings)
    person = add_person(db)
    add_synthetic_faces(db, person, unit_vectors(50, seed=3))
    db.index.catch_up()
    db.index.save(force=True)
    add_synthetic_faces(db, person, unit_vectors(20, seed=4))  # after the snapshot
    db.store.close()  # no close(): the snapshot stays behind
    again = started(settings, migrate=False)
    assert again.index.count == 70
    assert index_ids(again) == database_face_ids(again)
    again.close()


@pytest.mark.slow
def test_killed_writer_loses_nothing_acknowledged(
    url: str, tmp_path: Path, backend: IndexBackend
) -> None:
    settings = make_settings(tmp_path, url, index_backend=backend)
    started(settings).close()
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
    db = started(settings, migrate=False)
    assert set(acknowledged) <= index_ids(db)
    assert index_ids(db) == database_face_ids(db)
    db.close()


def test_two_processes_see_each_others_writes(url: str, tmp_path: Path) -> None:
    reader = started(make_settings(tmp_path / "reader", url))
    other_dir = tmp_path / "writer" / "data"
    result = subprocess.run(
        [sys.executable, "-m", "tests.integration._writer", url, str(other_dir), "15", "9"],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    written = {int(line) for line in result.stdout.split()}
    reader.index.catch_up()
    assert written <= index_ids(reader)
    probe = unit_vectors(15, seed=9)[3]
    assert ranked(reader, probe, 1, 0.9)[0].match
    person = add_person(reader, "reader's own")
    mine = add_synthetic_faces(reader, person, unit_vectors(1, seed=10))
    writer_view = started(make_settings(tmp_path / "writer", url), migrate=False)
    assert set(mine) <= index_ids(writer_view)
    reader.close()
    writer_view.close()


def _garbage(settings: Settings) -> None:
    (settings.index_dir / SNAPSHOT_FILE).write_bytes(b"garbage" * 100)


def _of_another_model(settings: Settings) -> None:
    path = settings.index_dir / MANIFEST_FILE
    manifest = json.loads(path.read_text()) | {"model_version": "some-older-model", "count": 999}
    path.write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    ("damage", "logged"), [(_garbage, "corrupt"), (_of_another_model, "some-older-model")]
)
def test_a_snapshot_that_does_not_fit_is_discarded_and_rebuilt(
    url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    damage: Callable[[Settings], None],
    logged: str,
) -> None:
    settings = make_settings(tmp_path, url)
    db = started(settings)
    add_synthetic_faces(db, add_person(db), unit_vectors(12, seed=5))
    db.close()
    damage(settings)
    with caplog.at_level(logging.WARNING):
        again = started(settings, migrate=False)
    assert logged in caplog.text
    assert index_ids(again) == database_face_ids(again) and again.index.count == 12
    again.close()


def test_reindex_while_searches_run(url: str, tmp_path: Path, backend: IndexBackend) -> None:
    db = started(make_settings(tmp_path, url, index_backend=backend))
    people = [add_person(db, f"p{i}") for i in range(20)]
    vectors = unit_vectors(400, seed=8)
    for i, person in enumerate(people):
        add_synthetic_faces(db, person, vectors[i * 20 : (i + 1) * 20])
    db.index.catch_up()
    failures: list[str] = []
    stop = threading.Event()

    def searcher() -> None:
        n = 0
        while not stop.is_set():
            i = n % 400
            top = ranked(db, vectors[i], 1, 0.9)
            if not top or top[0].person.id != people[i // 20]:
                failures.append(f"query {i} got {top[:1]}")
            n += 1

    threads = [threading.Thread(target=searcher) for _ in range(3)]
    for t in threads:
        t.start()
    job = Job(kind=JobKind.REINDEX, params={})
    for _ in range(3):
        db.reindex.run(job)
    stop.set()
    for t in threads:
        t.join()
    assert failures == []
    assert job.counts["indexed"] == 400
    assert index_ids(db) == database_face_ids(db)
    db.close()


def test_ivf_index_kind_serves_search(url: str, tmp_path: Path) -> None:
    db = started(make_settings(tmp_path, url, index_kind="ivf", index_ivf_nlist=8))
    person = add_person(db)
    vectors = unit_vectors(400, seed=11)
    add_synthetic_faces(db, person, vectors)
    db.index.rebuild()
    assert db.index.health()["kind"] == "ivf"
    top = ranked(db, vectors[7], 1, 0.9)
    assert top and top[0].person.id == person
    assert np.isclose(top[0].score, 1.0, atol=1e-5)
    db.close()


@pytest.mark.postgres
def test_changes_committed_out_of_order_are_not_missed(
    tmp_path: Path, backend: IndexBackend
) -> None:
    """PostgreSQL hands out change ids at insert time, so id N can commit after id N+1."""
    from sqlalchemy.orm import Session

    from tests.factories import postgres_schema

    def stage(db: Services, person: str, vector: np.ndarray) -> Session:
        """Insert a face in an open transaction; return the session (not committed)."""
        session = Session(db.store.engine)
        stage_face(session, person, vector)
        return session

    with postgres_schema() as url:
        db = started(make_settings(tmp_path, url, index_backend=backend))
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
    from sqlalchemy.orm import Session

    from tests.factories import postgres_schema

    # Both contexts use one Milvus (Lite) file, as two processes would one Milvus server.
    shared = {"index_backend": backend, "milvus_uri": str(tmp_path / "milvus.db")}
    with postgres_schema() as url:
        writer = started(make_settings(tmp_path / "w", url, **shared))
        person = add_person(writer)
        slow, fast = unit_vectors(2, seed=31)
        session = Session(writer.store.engine)  # takes the lower change id, commits last
        stage_face(session, person, slow)
        add_synthetic_faces(writer, person, fast[None, :])  # the higher id, committed now

        fresh = started(make_settings(tmp_path / "r", url, **shared), migrate=False)  # rebuilds
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
    from facedb.index import local_home

    db = started(make_settings(tmp_path, url))
    person = add_person(db)
    add_synthetic_faces(db, person, unit_vectors(5, seed=41))
    db.index.catch_up()
    writing, release = threading.Event(), threading.Event()
    real_write = local_home._write_atomically

    def slow_write(path: Path, data: bytes) -> None:
        writing.set()
        assert release.wait(30)
        real_write(path, data)

    monkeypatch.setattr(local_home, "_write_atomically", slow_write)
    saver = threading.Thread(target=db.index.save, args=(True,))
    saver.start()
    assert writing.wait(30)
    searched: list[int] = []

    def searcher() -> None:
        searched.append(len(ranked(db, unit_vectors(1, seed=41)[0], 1, 0.5)))

    thread = threading.Thread(target=searcher)
    thread.start()
    thread.join(30)  # returns while the snapshot is still being written
    finished_during_write = not thread.is_alive() and not release.is_set()
    release.set()
    saver.join(30)
    assert finished_during_write and searched == [1]
    assert (db.settings.index_dir / SNAPSHOT_FILE).is_file()
    db.close()

"""Store round-trips and migrations on PostgreSQL and SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from facedb.errors import Conflict, DatabaseNotMigrated, NotFound
from facedb.service.context import FaceDB
from facedb.store import repository as repo
from facedb.store.db import downgrade, make_engine, transaction, upgrade
from tests.factories import (
    add_person,
    add_synthetic_faces,
    make_settings,
    started_db,
    unit_vectors,
)


@pytest.fixture
def db(url: str, tmp_path: Path) -> Iterator[FaceDB]:
    instance = started_db(make_settings(tmp_path, url))
    yield instance
    instance.close()


def tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_migrations_up_down_up(url: str) -> None:
    upgrade(url)
    assert {"persons", "photos", "faces", "embeddings", "changes", "api_keys"} <= tables(url)
    downgrade(url, "base")
    assert tables(url) <= {"alembic_version"}
    upgrade(url)
    assert "faces" in tables(url)


def test_service_refuses_an_unmigrated_database(url: str, tmp_path: Path) -> None:
    with pytest.raises(DatabaseNotMigrated, match="facedb db upgrade"):
        started_db(make_settings(tmp_path, url), migrate=False)


def test_person_round_trip_and_filters(db: FaceDB) -> None:
    with transaction(db.sessions) as session:
        first = repo.add_person(
            session,
            name="Ana Díaz",
            external_ref="CASE-1",
            gender="female",
            birth_date=date(2001, 5, 4),
            status="missing",
            attributes={"last_seen": "Lisbon"},
        )
        repo.add_person(session, name="Bo Chen", status="found")
    with transaction(db.sessions) as session:
        loaded = repo.get_person(session, first.id)
        assert (loaded.name, loaded.birth_date, loaded.attributes) == (
            "Ana Díaz",
            date(2001, 5, 4),
            {"last_seen": "Lisbon"},
        )
        page, total = repo.find_persons(session, status="missing")
        assert total == 1 and page[0].id == first.id
        assert repo.find_persons(session, name="chen")[1] == 1
        assert repo.find_persons(session, external_ref="CASE-1")[0][0].id == first.id
        repo.update_person(session, loaded, {"status": "found"})
    with transaction(db.sessions) as session:
        assert repo.find_persons(session, status="found")[1] == 2


def test_duplicate_external_reference_conflicts(db: FaceDB) -> None:
    add_person(db, "One", external_ref="X-1")
    with pytest.raises(Conflict):
        add_person(db, "Two", external_ref="X-1")


def test_faces_round_trip_and_cascading_delete(db: FaceDB) -> None:
    person = add_person(db)
    vectors = unit_vectors(3, seed=1)
    face_ids = add_synthetic_faces(db, person, vectors)
    with transaction(db.sessions) as session:
        ids, stored = repo.embeddings_for(session, 1, face_ids, 128)
        assert sorted(ids.tolist()) == sorted(face_ids)
        order = np.argsort(ids)
        assert np.array_equal(stored[order], vectors[np.argsort(face_ids)])
        removed = repo.delete_person(session, person)
    assert sorted(removed) == sorted(face_ids)
    with transaction(db.sessions) as session:
        assert repo.count_faces(session) == 0
        assert repo.embeddings_for(session, 1, face_ids, 128)[0].size == 0
        ops = [c.op for c in repo.changes_after(session, 0)]
        assert ops == ["add"] * 3 + ["remove"] * 3
        with pytest.raises(NotFound):
            repo.get_person(session, person)

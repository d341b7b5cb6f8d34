"""Store round-trips, migrations and closed sets on PostgreSQL and SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from facedb.domain import ChangeOp, PersonStatus
from facedb.errors import Conflict, DatabaseNotMigrated, NotFound
from facedb.records import PersonFilter
from facedb.store.db import downgrade, make_engine, upgrade
from facedb.wiring import Services
from tests.factories import (
    add_person,
    add_synthetic_faces,
    make_settings,
    started,
    unit_vectors,
)


@pytest.fixture
def db(url: str, tmp_path: Path) -> Iterator[Services]:
    instance = started(make_settings(tmp_path, url))
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


def test_the_migrations_build_exactly_the_schema_the_models_declare(url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from facedb.store.models import Base

    upgrade(url)
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_service_refuses_an_unmigrated_database(url: str, tmp_path: Path) -> None:
    with pytest.raises(DatabaseNotMigrated, match="facedb db upgrade"):
        started(make_settings(tmp_path, url), migrate=False)


def test_person_round_trip_and_filters(db: Services) -> None:
    with db.store.unit() as unit:
        first = unit.persons.add(
            name="Ana Díaz",
            external_ref="CASE-1",
            gender="female",
            birth_date=date(2001, 5, 4),
            status=PersonStatus.MISSING,
            attributes={"last_seen": "Lisbon"},
        )
        unit.persons.add(name="Bo Chen", status=PersonStatus.FOUND)
    with db.store.unit() as unit:
        loaded = unit.persons.get(first.id)
        assert (loaded.name, loaded.birth_date, loaded.attributes) == (
            "Ana Díaz",
            date(2001, 5, 4),
            {"last_seen": "Lisbon"},
        )
        assert loaded.status is PersonStatus.MISSING  # read back as the enum
        page, total = unit.persons.page(PersonFilter(status=PersonStatus.MISSING), 50, 0)
        assert total == 1 and page[0].id == first.id
        assert unit.persons.page(PersonFilter(name="chen"), 50, 0)[1] == 1
        assert unit.persons.page(PersonFilter(external_ref="CASE-1"), 50, 0)[0][0].id == first.id
        unit.persons.update(loaded.id, {"status": PersonStatus.FOUND})
    with db.store.unit() as unit:
        assert unit.persons.page(PersonFilter(status=PersonStatus.FOUND), 50, 0)[1] == 2


def test_duplicate_external_reference_conflicts(db: Services) -> None:
    add_person(db, "One", external_ref="X-1")
    with pytest.raises(Conflict):
        add_person(db, "Two", external_ref="X-1")


def test_a_value_outside_its_closed_set_is_refused_by_the_database(db: Services) -> None:
    person = add_person(db)
    with db.store.engine.begin() as connection, pytest.raises(sa.exc.IntegrityError):
        connection.execute(
            sa.text("UPDATE persons SET status = 'vanished' WHERE id = :id"), {"id": person}
        )


def test_faces_round_trip_and_cascading_delete(db: Services) -> None:
    person = add_person(db)
    vectors = unit_vectors(3, seed=1)
    face_ids = add_synthetic_faces(db, person, vectors)
    with db.store.unit() as unit:
        ids, stored = unit.embeddings.of_faces(1, face_ids, 128)
        assert sorted(ids.tolist()) == sorted(face_ids)
        order = np.argsort(ids)
        assert np.array_equal(stored[order], vectors[np.argsort(face_ids)])
        removed = unit.persons.delete(person)
    assert sorted(removed) == sorted(face_ids)
    with db.store.unit() as unit:
        assert unit.photos.count_faces() == 0
        assert unit.embeddings.of_faces(1, face_ids, 128)[0].size == 0
        ops = [c.op for c in unit.changes.after(0, 100)]
        assert ops == [ChangeOp.ADD] * 3 + [ChangeOp.REMOVE] * 3
        with pytest.raises(NotFound):
            unit.persons.get(person)


def test_upgrading_a_populated_database_keeps_every_row(url: str, tmp_path: Path) -> None:
    """0004 and 0005 rebuild tables on SQLite: nothing may cascade away, face ids must never
    be reused afterwards, and existing pairs get their evidence."""
    upgrade(url, "0003")
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text(
            "INSERT INTO persons (id, name, status, attributes, created_at, updated_at) "
            "VALUES ('p1', 'Ana', 'missing', '{}', '2020-01-01', '2020-01-01')"
        ))  # fmt: skip
        connection.execute(sa.text(
            "INSERT INTO photos (id, person_id, sha256, content, media_type, width, height, "
            "created_at) VALUES ('ph1', 'p1', 'x', 'x', 'image/png', 1, 1, '2020-01-01')"
        ))  # fmt: skip
        connection.execute(sa.text(
            "INSERT INTO faces (photo_id, person_id, box_x, box_y, box_w, box_h, landmarks, "
            "confidence, crop_jpeg, created_at) "
            "VALUES ('ph1', 'p1', 0, 0, 1, 1, '{}', 1.0, 'x', '2020-01-01')"
        ))  # fmt: skip
        for found, score in (("f1", 0.5), ("f2", 0.3)):
            connection.execute(sa.text(
                "INSERT INTO match_candidates (state, score, rank, missing_person_id, "
                "found_person_id, missing_face_id, found_face_id, missing_photo_id, "
                "found_photo_id, created_at, raised_at, statuses_before) VALUES ('pending', "
                f":score, 1, 'p1', '{found}', 1, 2, 'ph1', 'x', '2020-01-01', '2020-01-01', '{{}}')"
            ), {"score": score})  # fmt: skip
    engine.dispose()
    upgrade(url)
    engine = make_engine(url)
    with engine.begin() as connection:
        counts = [
            connection.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()
            for t in ("persons", "photos", "faces")
        ]
        assert counts == [1, 1, 1]
        # 0005 works out the evidence of existing pairs: the margin over each person's
        # next-best candidate (the floor of 0.22 when there is none), averaged.
        evidence = dict(connection.execute(sa.text(
            "SELECT found_person_id, evidence FROM match_candidates")).tuples().all())  # fmt: skip
        assert evidence == pytest.approx(
            {"f1": 0.5 - (0.3 + 0.22) / 2, "f2": 0.3 - (0.5 + 0.22) / 2}
        )
        (first,) = connection.execute(sa.text("SELECT id FROM faces")).scalars()
        connection.execute(sa.text("DELETE FROM faces"))
        connection.execute(sa.text(
            "INSERT INTO faces (photo_id, person_id, box_x, box_y, box_w, box_h, landmarks, "
            "confidence, crop_jpeg, created_at) "
            "VALUES ('ph1', 'p1', 0, 0, 1, 1, '{}', 1.0, 'x', '2020-01-02')"
        ))  # fmt: skip
        (second,) = connection.execute(sa.text("SELECT id FROM faces")).scalars()
    engine.dispose()
    assert second > first  # never reused

"""Faces stored before quality was measured: `facedb quality` reads their photos again and
measures them, a batch at a time, and the register overview names whom to ask."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from facedb.domain import Register
from facedb.store.db import make_engine
from tests.factories import add_person, enroll_bytes, make_settings, started
from tests.fakes import fake_photo


def test_faces_stored_before_quality_are_measured_again_from_their_photos(
    url: str, tmp_path: Path
) -> None:
    services = started(make_settings(tmp_path, url))
    try:
        child = add_person(services, "Stored Child", status="missing")
        adult = add_person(services, "Stored Adult", status="missing")
        enroll_bytes(services, child, fake_photo(181, age=3))
        enroll_bytes(services, adult, fake_photo(182, age=30), fake_photo(182, 1, age=30))
        with services.store.unit() as unit:
            before = {f.id: f.quality for p in unit.photos.of_person(adult) for f in p.faces}
        engine = make_engine(url)
        with engine.begin() as connection:  # as a database from before migration 0013 holds
            connection.execute(sa.text("UPDATE faces SET quality = NULL"))
        engine.dispose()
        (register,) = services.quality.registers(Register.MISSING)
        assert register.measured == 0
        assert {a.person_id for a in register.below} >= {child, adult}
        assert all("stored before quality" in a.advice for a in register.below)

        assert services.quality.measure_stored() == 3
        assert services.quality.measure_stored() == 0  # nothing left: a rerun does nothing
        with services.store.unit() as unit:
            after = {f.id: f.quality for p in unit.photos.of_person(adult) for f in p.faces}
        assert after == before  # the same record as at enrolment (the markers have no nose)
        (register,) = services.quality.registers(Register.MISSING)
        below = {a.person_id: a for a in register.below}
        assert adult not in below and below[child].best is not None
        assert below[child].best.score == 19
    finally:
        services.close()

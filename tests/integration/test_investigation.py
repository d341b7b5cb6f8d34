"""Investigation mode: a search may ask for a long candidate list, and its answer says how
large the register it ran against was, so a reviewer knows how deep to read."""

from __future__ import annotations

import io
from pathlib import Path

from facedb.services.uploads import Upload
from facedb.trail.audit import LOCAL
from tests.factories import enroll_bytes, make_settings, started
from tests.fakes import fake_photo


def test_a_long_candidate_list_says_the_size_of_the_register_it_read(
    url: str, tmp_path: Path
) -> None:
    db = started(make_settings(tmp_path, url))
    try:
        for who in range(60):
            person = db.persons.create({"name": f"Person {who}"}).id
            assert enroll_bytes(db, person, fake_photo(10 + who, 0)).stored == 1
        db.persons.create({"name": "No photo yet"})
        probe = Upload("probe.png", io.BytesIO(fake_photo(10, 1)))
        result = db.search.search(LOCAL, probe, k=50, threshold=-1.0)
        (face,) = result.faces
        assert len(face.candidates) == 50  # fifty persons, each once
        assert len({c.person.id for c in face.candidates}) == 50
        assert face.candidates[0].person.name == "Person 0"
        assert (result.searched.persons, result.searched.faces) == (60, 60)
        late = db.persons.create({"name": "Enrolled since"}).id
        assert enroll_bytes(db, late, fake_photo(200, 0)).stored == 1
        again = db.search.search(LOCAL, Upload("probe.png", io.BytesIO(fake_photo(10, 1))), k=5)
        assert (again.searched.persons, again.searched.faces) == (61, 61)  # counted again
    finally:
        db.close()

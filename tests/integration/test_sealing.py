"""Photos, crops and embeddings sealed at rest (AES-GCM), on both databases: the raw columns
hold no plaintext, a missing or wrong key stops the service at start-up with what to do,
search answers the same before and after sealing, and a rotation stopped midway resumes."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
import sqlalchemy as sa

from facedb.errors import DataKeyError
from facedb.services.uploads import Upload
from facedb.store import seal
from facedb.store.reseal import reseal
from facedb.trail.audit import LOCAL
from facedb.wiring import Services
from tests.factories import make_settings, run_facedb, started
from tests.fakes import fake_photo

PEOPLE = range(1, 7)


def enroll_people(services: Services) -> None:
    for who in PEOPLE:
        person = services.persons.create({"name": f"sealed {who}"})
        uploads = [Upload(f"{v}.png", io.BytesIO(fake_photo(who, v))) for v in range(3)]
        assert services.enrollment.enroll(person.id, uploads).stored == 3


def answers(services: Services) -> list[list[tuple[str, float]]]:
    out = []
    for who in PEOPLE:
        probe = Upload("probe.png", io.BytesIO(fake_photo(who, 9)))
        result = services.search.search(LOCAL, probe, k=3)
        out.append([(c.person.name, round(c.score, 6)) for c in result.faces[0].candidates])
    return out


def raw_values(services: Services) -> list[bytes]:
    with services.store.engine.connect() as connection:
        return [
            bytes(v)
            for table, column in seal.SEALED_COLUMNS
            for v in connection.execute(sa.text(f"SELECT {column} FROM {table}")).scalars()
        ]


def key_file(folder: Path) -> Path:
    path = folder / "data.key"
    seal.write_new_key(path)
    return path


def test_sealed_rows_hold_no_plaintext_and_search_answers_the_same(
    url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    plain = started(make_settings(tmp_path / "a", url))
    enroll_people(plain)
    before = answers(plain)
    plaintext = raw_values(plain)
    assert plaintext and not any(seal.is_sealed(v) for v in plaintext)
    plain.close()

    keys = key_file(tmp_path)
    sealed = started(make_settings(tmp_path / "b", url, data_key_file=keys))
    done = reseal(sealed.store, batch=4)  # plaintext rows written before sealing: sealed now
    assert done == {"photos.content": 18, "faces.crop_jpeg": 18, "embeddings.vector": 18}
    values = raw_values(sealed)
    assert values and all(seal.is_sealed(v) for v in values)
    # no stored value appears inside a sealed one (a 3-byte magic number would turn up in
    # random ciphertext now and then: compare 64 bytes of each plaintext instead)
    assert not any(p[:64] in v for p in plaintext for v in values)
    assert answers(sealed) == before
    person = sealed.persons.page(limit=1)[0][0]
    photo = sealed.enrollment.photos_of(person.id)[0]
    content, _ = sealed.enrollment.photo_content(photo.id)
    assert sealed.enrollment.face_crop(photo.faces[0].id).startswith(b"\xff\xd8")
    assert content.startswith(b"\x89PNG")  # opened on the way out
    settings = sealed.settings
    sealed.close()  # saves the index snapshot: sealed too
    snapshot = (settings.index_dir / "faces.faiss").read_bytes()
    assert seal.is_sealed(snapshot)
    caplog.clear()
    again = started(settings, migrate=False)
    assert again.index.count == 18 and answers(again) == before
    assert "snapshot discarded" not in caplog.text  # opened with the key, not rebuilt
    again.close()


def test_a_missing_or_wrong_key_stops_the_start_with_what_to_do(url: str, tmp_path: Path) -> None:
    keys = key_file(tmp_path)
    first = started(make_settings(tmp_path / "a", url, data_key_file=keys))
    enroll_people(first)
    first.close()

    with pytest.raises(DataKeyError, match="no FACEDB_DATA_KEY_FILE is set"):
        started(make_settings(tmp_path / "b", url), migrate=False)
    other = tmp_path / "other.key"
    seal.write_new_key(other)
    with pytest.raises(DataKeyError, match="the key file lacks it"):
        started(make_settings(tmp_path / "c", url, data_key_file=other), migrate=False)
    (tmp_path / "bad.key").write_text("not a key\n")
    with pytest.raises(DataKeyError, match="not a base64-encoded 256-bit key"):
        seal.Keyring.read(tmp_path / "bad.key")


def test_a_rotation_stopped_midway_resumes_and_old_rows_open_meanwhile(
    url: str, tmp_path: Path
) -> None:
    keys = key_file(tmp_path)
    services = started(make_settings(tmp_path / "a", url, data_key_file=keys))
    enroll_people(services)
    before = answers(services)
    old_id = services.store.keyring.current_id  # type: ignore[union-attr]
    services.close()

    seal.write_new_key(keys)  # the new key first, the old one below it
    rotating = started(make_settings(tmp_path / "b", url, data_key_file=keys))
    new_id = rotating.store.keyring.current_id  # type: ignore[union-attr]

    class Stop(Exception):
        pass

    def crash_after_two(_: str, __: int, seen: list[int] = []) -> None:  # noqa: B006
        seen.append(1)
        if len(seen) == 2:
            raise Stop

    with pytest.raises(Stop):
        reseal(rotating.store, batch=5, after_batch=crash_after_two)
    ids = {seal.sealed_key_id(v) for v in raw_values(rotating)}
    assert ids == {old_id, new_id}  # half done: both keys in use, and both open
    assert answers(rotating) == before

    # The oldest rows are re-sealed and a newer one is written under the new key: only the
    # rows between them still need the old key. A key file without it does not start.
    newest = rotating.persons.create({"name": "sealed after the stop"})
    upload = Upload("new.png", io.BytesIO(fake_photo(PEOPLE[0], 8)))
    assert rotating.enrollment.enroll(newest.id, [upload]).stored == 1
    only_new = tmp_path / "only-new.key"
    only_new.write_text(keys.read_text().splitlines()[0] + "\n")
    with pytest.raises(DataKeyError, match=f"sealed under data key {old_id}"):
        started(make_settings(tmp_path / "c", url, data_key_file=only_new), migrate=False)
    counts = rotating.store.sealed_key_counts()
    assert set(counts[("photos", "content")]) == {old_id, new_id}
    rotating.persons.delete(newest.id)  # the searches below compare with before

    reseal(rotating.store, batch=5)  # started again: carries on
    assert {seal.sealed_key_id(v) for v in raw_values(rotating)} == {new_id}
    assert reseal(rotating.store, batch=5) == dict.fromkeys(
        ("photos.content", "faces.crop_jpeg", "embeddings.vector"), 0
    )
    assert answers(rotating) == before
    rotating.close()


def test_the_key_commands_write_a_key_file_and_rotate(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    plain = started(make_settings(tmp_path / "d", url))
    enroll_people(plain)
    plain.close()
    keys = tmp_path / "data.key"
    env = {**os.environ, "FACEDB_DATABASE_URL": url, "FACEDB_DATA_DIR": str(tmp_path / "d"),
           "FACEDB_DATA_KEY_FILE": str(keys)}  # fmt: skip

    assert "is now first in" in run_facedb(env, "keys", "new-data-key", str(keys))
    assert keys.stat().st_mode & 0o077 == 0  # readable by its owner only
    rotated = run_facedb(env, "keys", "rotate-data-key")
    key = seal.Keyring.read(keys).current_id
    assert f"sealed under data key {key}: 18 photos.content, 18 faces.crop_jpeg" in rotated
    assert "0 photos.content" in run_facedb(env, "keys", "rotate-data-key")  # nothing left to do

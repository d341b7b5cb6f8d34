"""`facedb import` / `facedb export`: every row reported, kill -9 resumed, a round trip.

Faces come from the fake analyzer (tests/fakes.py); the real models import the same way
(the end-to-end tests cover them)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from facedb.bulk.exporter import MATCHES
from facedb.bulk.importer import RowResult
from facedb.domain import JobKind, MatchState, PersonChange, RowOutcome
from facedb.records import PairFilter
from facedb.store.db import upgrade
from facedb.trail.audit import LOCAL
from facedb.trail.jobs import Job
from facedb.wiring import Services
from tests.conftest import REPO
from tests.factories import make_settings, run_facedb, started
from tests.fakes import fake_photo, no_face_photo


@pytest.fixture
def db(url: str, tmp_path: Path) -> Iterator[Services]:
    instance = started(make_settings(tmp_path, url))
    yield instance
    instance.close()


def write_manifest(path: Path, rows: list[dict[str, Any]]) -> Path:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def write(data: bytes, folder: Path, name: str) -> str:
    (folder / name).parent.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    return name


def run_import(
    db: Services, manifest: Path, decisions: list[RowResult] | None = None, **options: Any
) -> dict[int, RowResult]:
    """Import; return each manifest row's result by line (an export's restored decisions,
    reported by their line of matches.jsonl, go to ``decisions``)."""
    results: list[RowResult] = []
    db.importer.run(manifest, results.append, **options)
    rows = [r for r in results if r.path != MATCHES]
    restored = [r for r in results if r.path == MATCHES]
    for part in (rows, restored):
        assert len({r.line for r in part}) == len(part)  # one outcome per line
    if decisions is not None:
        decisions.extend(restored)
    return {r.line: r for r in rows}


def state(db: Services) -> dict[str, Any]:
    """Everything an import writes, keyed so that two databases compare equal."""
    with db.store.engine.connect() as c:
        persons = c.execute(
            sa.text(
                "SELECT external_ref, name, status, gender, birth_date, birth_year, attributes "
                "FROM persons ORDER BY external_ref"
            )
        ).all()
        photo_rows = c.execute(
            sa.text(
                "SELECT p.external_ref, ph.sha256, ph.taken_at, COUNT(f.id), COUNT(e.face_id) "
                "FROM photos ph JOIN persons p ON p.id = ph.person_id "
                "LEFT JOIN faces f ON f.photo_id = ph.id "
                "LEFT JOIN embeddings e ON e.face_id = f.id "
                "GROUP BY p.external_ref, ph.sha256, ph.taken_at ORDER BY 1, 2"
            )
        ).all()
        added = c.execute(sa.text("SELECT COUNT(*) FROM changes WHERE op = 'add'")).scalar()
    return {
        "persons": [(*(str(v) for v in row[:6]), _json(row[6])) for row in persons],
        "photos": [tuple(str(v) for v in row) for row in photo_rows],
        "index_adds": added,
    }


def _json(value: Any) -> str:
    return json.dumps(value if isinstance(value, dict) else json.loads(value), sort_keys=True)


def test_a_mixed_manifest_imports_the_good_rows_and_reports_each_bad_one(
    db: Services, tmp_path: Path
) -> None:
    folder = tmp_path / "register"
    folder.mkdir()
    (folder / "notes.jpg").write_text("not a photo")
    (folder / "sky.jpg").write_bytes(no_face_photo())
    a1 = write(fake_photo(1, 0), folder, "a/1.jpg")
    a2 = write(fake_photo(1, 1), folder, "a/2.jpg")
    b1 = write(fake_photo(2, 0), folder, "b/1.jpg")
    rows = [
        {"external_ref": "A", "name": "Anna", "status": "missing", "birth_date": "1958-08-16",
         "path": a1, "taken_at": "1985-06-01", "last_seen": "Station Road"},  # line 2
        {"external_ref": "A", "path": a2},  # line 3
        {"external_ref": "A", "path": a1},  # line 4: the same photo again
        {"external_ref": "A", "path": "a/missing.jpg"},  # line 5: no such file
        {"external_ref": "B", "name": "Bob", "status": "found", "path": b1},  # line 6
        {"external_ref": "B", "path": "notes.jpg"},  # line 7: not an image
        {"external_ref": "B", "path": "sky.jpg"},  # line 8: no face in it
        {"external_ref": "B", "name": "Robert", "path": b1},  # line 9: contradicts line 6
        {"external_ref": "C", "name": "Cem", "birth_date": "2010-05-01", "birth_year": "2009",
         "path": b1},  # line 10: birth date and year disagree
        {"external_ref": "D", "name": "Dan", "birth_date": "2010-01-01", "path": b1,
         "taken_at": "2005-01-01"},  # line 11: photographed before birth
        {"name": "nobody", "path": b1},  # line 12: no case number
    ]  # fmt: skip
    manifest = write_manifest(folder / "manifest.csv", rows)

    dry = run_import(db, manifest, dry_run=True)
    assert [dry[n].outcome for n in (2, 3, 6, 8)] == [RowOutcome.VALID] * 4  # faces unseen
    assert state(db)["persons"] == []  # a dry run writes nothing

    got = run_import(db, manifest)
    outcome = {line: (r.outcome, r.error.code if r.error else None) for line, r in got.items()}
    assert outcome == {
        2: (RowOutcome.STORED, None),
        3: (RowOutcome.STORED, None),
        4: (RowOutcome.DUPLICATE, None),
        5: (RowOutcome.REFUSED, "file_unreadable"),
        6: (RowOutcome.STORED, None),
        7: (RowOutcome.REFUSED, "not_an_image"),
        8: (RowOutcome.REFUSED, "no_face"),
        9: (RowOutcome.REFUSED, "conflicting_record"),
        10: (RowOutcome.REFUSED, "invalid_input"),
        11: (RowOutcome.REFUSED, "invalid_input"),
        12: (RowOutcome.REFUSED, "invalid_input"),
    }
    assert got[2].person is PersonChange.CREATED and got[2].person_id == got[3].person_id
    after = state(db)
    assert [p[:3] for p in after["persons"]] == [
        ("A", "Anna", "missing"),
        ("B", "Bob", "found"),
        ("D", "Dan", "missing"),  # its record was valid; only its photo was refused
    ]
    assert json.loads(after["persons"][0][6]) == {"last_seen": "Station Road"}
    assert len(after["photos"]) == 3 and after["index_adds"] == 3
    assert all(p[3] == "1" and p[4] == "1" for p in after["photos"])  # one face, embedded
    assert db.index.count == 3

    again = run_import(db, manifest)  # idempotent: nothing new, each row says why
    assert {again[n].outcome for n in (2, 3, 6)} == {RowOutcome.ALREADY_STORED}
    assert again[2].person is PersonChange.UNCHANGED
    assert state(db) == after


@pytest.mark.slow
def test_kill_9_mid_import_then_rerun_ends_as_one_uninterrupted_run(
    url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "register"
    rows = []
    for person in range(1, 31):
        for variant in range(2):
            rows.append(
                {"external_ref": f"CASE-{person}", "name": f"person {person}",
                 "status": "missing" if person % 2 else "found",
                 "path": write(fake_photo(person, variant), folder, f"{person}/{variant}.png")}
            )  # fmt: skip
    manifest = write_manifest(folder / "manifest.csv", rows)
    upgrade(url)
    env = {**os.environ, "FACEDB_DATABASE_URL": url, "FACEDB_DATA_DIR": str(tmp_path / "d")}
    command = [sys.executable, "-m", "tests.integration._fake_cli", "import", str(manifest),
               "--batch", "1"]  # fmt: skip
    report = folder / "manifest.csv.report.csv"
    process = subprocess.Popen(
        command, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if report.exists() and report.read_text().count(",stored,") >= 4:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the import ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()

    resumed = subprocess.run(
        command, env=env, cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    lines = list(csv.DictReader(report.open()))
    assert len(lines) == len(rows)
    already = sum(r["outcome"] == "already_stored" for r in lines)
    assert already >= 4 and already + sum(r["outcome"] == "stored" for r in lines) == len(rows)

    interrupted = started(make_settings(tmp_path / "a", url), migrate=False)
    fresh_url = f"sqlite:///{tmp_path / 'uninterrupted.sqlite3'}"
    uninterrupted = started(make_settings(tmp_path / "b", fresh_url))
    try:
        run_import(uninterrupted, manifest)
        assert state(interrupted) == state(uninterrupted)
        assert len(state(interrupted)["photos"]) == len(rows)
    finally:
        interrupted.close()
        uninterrupted.close()


def test_the_command_line_says_what_a_dry_run_and_a_repeat_crossmatch_did(tmp_path: Path) -> None:
    folder = tmp_path / "register"
    rows = [{"external_ref": f"DRY-{n}", "name": f"person {n}", "status": "missing",
             "path": write(fake_photo(n, 0), folder, f"{n}.png")} for n in (1, 2)]  # fmt: skip
    manifest = write_manifest(folder / "manifest.csv", rows)
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    upgrade(url)
    env = {**os.environ, "FACEDB_DATABASE_URL": url, "FACEDB_DATA_DIR": str(tmp_path / "d")}

    dry = run_facedb(env, "import", str(manifest), "--dry-run")
    assert "dry run: nothing was written" in dry and "2 would be created" in dry
    assert f"report: {folder / 'manifest.csv.report.csv'}" in dry
    run_facedb(env, "crossmatch")
    assert "0 pairs written: nothing changed since the last run" in run_facedb(env, "crossmatch")


def test_export_then_import_into_a_fresh_database_round_trips(db: Services, tmp_path: Path) -> None:
    folder = tmp_path / "register"
    rows = [
        {"external_ref": "M-1", "name": "Madonna", "status": "missing", "gender": "female",
         "birth_date": "1958-08-16", "path": write(fake_photo(1, 0), folder, "m1.png"),
         "taken_at": "1985-06-01", "case_officer": "K. Ali"},
        {"external_ref": "M-1", "path": write(fake_photo(1, 1), folder, "m2.png")},
        {"external_ref": "M-2", "name": "Elton", "status": "missing",
         "path": write(fake_photo(2, 0), folder, "e1.png")},
        {"external_ref": "F-1", "name": "Unidentified woman", "status": "unidentified",
         "path": write(fake_photo(1, 2), folder, "f1.png"), "taken_at": "2020-03-01"},
        {"external_ref": "F-2", "name": "Patient 17", "status": "found",
         "path": write(fake_photo(2, 2), folder, "f2.png")},
    ]  # fmt: skip
    run_import(db, write_manifest(folder / "manifest.csv", rows))
    db.crossmatch.run_batch(Job(kind=JobKind.CROSSMATCH, params={}))
    items, _ = db.review.page(PairFilter(state=MatchState.PENDING), limit=100)
    by_refs = {(m.missing.person.external_ref, m.found.person.external_ref): m for m in items}  # type: ignore[union-attr]
    db.review.decide(LOCAL, by_refs.pop(("M-1", "F-1")).id, MatchState.CONFIRMED, "same mole")
    for other in list(by_refs.values())[:1]:
        db.review.decide(LOCAL, other.id, MatchState.REJECTED, None)

    target = tmp_path / "handover.zip"
    summary = db.exporter.export(db.exporter.select([], None, True), target)
    assert (summary.persons, summary.photos) == (4, 5)
    assert summary.matches == 1 + min(1, len(by_refs)) == len(decided(db))

    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(target) as archive:
        archive.extractall(unpacked)
    fresh = started(make_settings(tmp_path / "fresh", f"sqlite:///{tmp_path / 'fresh.sqlite3'}"))
    try:
        restored: list[RowResult] = []
        got = run_import(fresh, unpacked / "manifest.jsonl", restored)
        assert {r.outcome for r in got.values()} == {RowOutcome.STORED}
        assert [r.outcome for r in restored] == [RowOutcome.RESTORED] * len(decided(db))
        assert state(fresh)["persons"] == state(db)["persons"]
        assert state(fresh)["photos"] == state(db)["photos"]
        assert persons_by_id(fresh) == persons_by_id(db)  # ids and links kept
        assert decided(fresh) == decided(db)
        again = run_import(fresh, unpacked / "manifest.jsonl")  # and idempotent
        assert {r.outcome for r in again.values()} == {RowOutcome.ALREADY_STORED}
        assert decided(fresh) == decided(db)
    finally:
        fresh.close()


def persons_by_id(db: Services) -> list[tuple[str, ...]]:
    with db.store.engine.connect() as c:
        rows = c.execute(
            sa.text("SELECT id, external_ref, status, linked_person_id FROM persons ORDER BY id")
        ).all()
    return [tuple(str(v) for v in row) for row in rows]


def decided(db: Services) -> list[tuple[Any, ...]]:
    with db.store.engine.connect() as c:
        rows = c.execute(
            sa.text(
                "SELECT m.missing_person_id, m.found_person_id, m.state, m.score, m.note, "
                "m.decided_by, a.sha256, b.sha256, m.years_between FROM match_candidates m "
                "JOIN photos a ON a.id = m.missing_photo_id "
                "JOIN photos b ON b.id = m.found_photo_id "
                "WHERE m.state != 'pending' ORDER BY 1, 2"
            )
        ).all()
    return [
        (*row[:3], round(float(row[3]), 5), *row[4:8], row[8] and round(float(row[8]), 2))
        for row in rows
    ]

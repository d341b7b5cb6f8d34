"""Imports an attacker or a careless export would send (issue: hardening, third pass): paths
that leave the import's folder, archives that inflate without bound, decisions that break
the one-link rule, cells that run as spreadsheet formulas, exports any local user can read.
Both databases; the fake analyzer."""

from __future__ import annotations

import csv
import os
import stat
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from facedb.bulk import source
from facedb.bulk.importer import RowResult
from facedb.domain import JobKind, MatchState, RowOutcome
from facedb.errors import InvalidInput
from facedb.records import PairFilter
from facedb.store.db import upgrade
from facedb.trail.audit import LOCAL
from facedb.trail.jobs import Job
from facedb.wiring import Services
from tests.conftest import REPO
from tests.factories import make_settings, started, table_counts
from tests.fakes import fake_photo
from tests.integration.test_bulk import run_import, write, write_manifest


@pytest.fixture
def db(url: str, tmp_path: Path) -> Iterator[Services]:
    instance = started(make_settings(tmp_path, url))
    yield instance
    instance.close()


def outcome_codes(results: dict[int, RowResult]) -> dict[str, tuple[RowOutcome, str]]:
    return {r.path: (r.outcome, r.error.code if r.error else "") for r in results.values()}


# --- 7: paths that leave the manifest's folder -----------------------------------------------
def test_manifest_paths_stay_inside_the_folder_and_say_so(db: Services, tmp_path: Path) -> None:
    folder = tmp_path / "register"
    outside = tmp_path / "elsewhere"
    write(fake_photo(81, 0), outside, "secret.png")  # a photo the manifest must not reach
    folder.mkdir()
    (folder / "link.png").symlink_to(outside / "secret.png")
    paths = ["../elsewhere/secret.png", str(outside / "secret.png"), "link.png", "/etc/shadow",
             "sub/../../elsewhere/secret.png"]  # fmt: skip
    rows = [{"external_ref": f"OUT-{n}", "name": f"p{n}", "path": p} for n, p in enumerate(paths)]
    rows.append({"external_ref": "IN-1", "name": "in", "path": write(fake_photo(82, 0), folder,
                                                                       "in.png")})  # fmt: skip
    rows.append({"external_ref": "IN-2", "name": "gone", "path": "missing.png"})
    got = outcome_codes(run_import(db, write_manifest(folder / "manifest.csv", rows)))
    for path in paths:
        assert got[path] == (RowOutcome.REFUSED, "path_outside_import"), path
    assert got["in.png"] == (RowOutcome.STORED, "")
    assert got["missing.png"] == (RowOutcome.REFUSED, "file_unreadable")
    assert table_counts(db)[1] == 1  # one photo stored: the one inside

    # A root given by the operator widens what may be read, and nothing beyond it.
    again = run_import(db, folder / "manifest.csv", root=tmp_path)
    assert outcome_codes(again)["../elsewhere/secret.png"] == (RowOutcome.STORED, "")
    assert outcome_codes(again)["/etc/shadow"] == (RowOutcome.REFUSED, "path_outside_import")


def test_archive_paths_stay_inside_the_archive(db: Services, tmp_path: Path) -> None:
    archive = tmp_path / "handover.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("photos/a.png", fake_photo(83, 0))
        lines = [
            '{"external_ref": "Z-1", "name": "a", "path": "photos/a.png"}',
            '{"external_ref": "Z-2", "name": "b", "path": "../../etc/passwd"}',
            '{"external_ref": "Z-3", "name": "c", "path": "/etc/passwd"}',
            '{"external_ref": "Z-4", "name": "d", "path": "photos/none.png"}',
        ]
        out.writestr("manifest.jsonl", "\n".join(lines))
    got = outcome_codes(run_import(db, archive))
    assert got == {
        "photos/a.png": (RowOutcome.STORED, ""),
        "../../etc/passwd": (RowOutcome.REFUSED, "path_outside_import"),
        "/etc/passwd": (RowOutcome.REFUSED, "path_outside_import"),
        "photos/none.png": (RowOutcome.REFUSED, "file_unreadable"),
    }


# --- 9: archives that inflate without bound ---------------------------------------------------
def test_an_archive_that_inflates_past_the_cap_is_refused_before_any_row(
    db: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(source, "MAX_ARCHIVE_BYTES", 16 * 1024**2)
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as out:
        out.writestr("manifest.jsonl", '{"external_ref": "B-1", "name": "b"}\n')
        out.writestr("photos/zeros.png", bytes(64 * 1024**2))  # 64 MiB of zeros, ~64 KB packed
    assert bomb.stat().st_size < 1024**2
    before = table_counts(db)
    with pytest.raises(InvalidInput, match="inflated"):
        run_import(db, bomb)
    assert table_counts(db) == before

    monkeypatch.setattr(source, "MAX_ARCHIVE_BYTES", 256 * 1024**3)
    monkeypatch.setattr(source, "MAX_MEMBERS", 1)
    with pytest.raises(InvalidInput, match="members"):
        run_import(db, bomb)


def test_an_archive_member_larger_than_a_photo_is_refused_without_inflating_it(
    db: Services, tmp_path: Path
) -> None:
    archive = tmp_path / "big.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as out:
        out.writestr("manifest.jsonl", '{"external_ref": "L-1", "name": "l", "path": "big.png"}')
        out.writestr("big.png", bytes(db.settings.max_image_bytes + 1))
    got = outcome_codes(run_import(db, archive))
    assert got == {"big.png": (RowOutcome.REFUSED, "image_too_large")}


# --- 8: imported links and decisions go through the review's rules --------------------------
def test_an_imported_confirmation_that_would_link_a_person_twice_is_refused_and_named(
    url: str, tmp_path: Path
) -> None:
    a = started(make_settings(tmp_path / "a", f"sqlite:///{tmp_path / 'a.sqlite3'}"))
    b = started(make_settings(tmp_path / "b", url))
    try:
        folder = tmp_path / "register"
        rows = [{"external_ref": ref, "name": ref, "status": status,
                 "path": write(fake_photo(84, n), folder, f"{n}.png")}
                for n, (ref, status) in enumerate([("M", "missing"), ("F1", "found"),
                                                   ("F2", "found")])]  # fmt: skip
        run_import(a, write_manifest(folder / "manifest.csv", rows))
        a.exporter.export(a.exporter.select([], None, True), tmp_path / "records.zip")
        run_import(b, tmp_path / "records.zip")  # the same persons, the same ids
        ids = {p.external_ref: p.id for p in b.persons.page(limit=10)[0]}
        for db in (a, b):
            db.crossmatch.run_batch(Job(kind=JobKind.CROSSMATCH, params={}))

        def pair(db: Services, found: str) -> int:
            items, _ = db.review.page(PairFilter(person_id=ids["M"]), limit=10)
            return next(p.id for p in items if p.found.person_id == ids[found])

        b.review.decide(LOCAL, pair(b, "F1"), MatchState.CONFIRMED, "here: F1")
        a.review.decide(LOCAL, pair(a, "F2"), MatchState.CONFIRMED, "there: F2")
        a.exporter.export(a.exporter.select([], None, True), tmp_path / "decided.zip")

        restored: list[RowResult] = []
        run_import(b, tmp_path / "decided.zip", restored)
        refused = [r for r in restored if r.outcome is RowOutcome.REFUSED]
        assert [r.error.code for r in refused if r.error] == ["already_linked"]
        assert refused[0].key == f"{ids['M']} / {ids['F2']}"
        assert {r.outcome for r in restored} - {RowOutcome.REFUSED} <= {RowOutcome.ALREADY_STORED}
        assert b.persons.get(ids["M"]).linked_person_id == ids["F1"]
        assert b.persons.get(ids["F2"]).linked_person_id is None
        with b.store.engine.connect() as connection:
            confirmed = connection.execute(
                sa.text("SELECT count(*) FROM match_candidates WHERE state = 'confirmed'")
            ).scalar_one()
        assert confirmed == 1
    finally:
        a.close()
        b.close()


def test_a_manifest_never_sets_a_link_itself(db: Services, tmp_path: Path) -> None:
    folder = tmp_path / "register"
    folder.mkdir()
    rows = [{"external_ref": "L-1", "name": "l", "status": "missing",
             "linked_person_id": "no-such-person"}]  # fmt: skip
    run_import(db, write_manifest(folder / "manifest.csv", rows))
    (person,) = db.persons.page(limit=10)[0]
    assert person.linked_person_id is None


# --- 11, 12: what an import and an export write -----------------------------------------------
def test_the_import_report_defuses_spreadsheet_formulas(tmp_path: Path) -> None:
    folder = tmp_path / "register"
    folder.mkdir()
    cells = ['=HYPERLINK("http://example.invalid","x")', "@SUM(1+1)", "+1", "-1", "\tx"]
    rows = [{"external_ref": cell, "name": "n", "path": cell} for cell in cells]
    manifest = write_manifest(folder / "manifest.csv", rows)
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    upgrade(url)
    env = {**os.environ, "FACEDB_DATABASE_URL": url, "FACEDB_DATA_DIR": str(tmp_path / "d")}
    command = [sys.executable, "-m", "tests.integration._fake_cli", "import", str(manifest)]
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 3, done.stderr[-2000:]  # every row refused: no such photo
    with (folder / "manifest.csv.report.csv").open(newline="") as handle:
        report = list(csv.DictReader(handle))
    assert len(report) == len(cells)
    for line in report:
        for column in ("case", "path", "message"):
            assert not line[column].startswith(("=", "+", "-", "@", "\t", "\r")), line
    # The manifest reader trims cells, so "\tx" arrives as "x"; the rest are kept, defused.
    assert {line["case"] for line in report} == {"'" + c for c in cells[:-1]} | {"x"}


def test_exports_are_readable_by_their_owner_only(db: Services, tmp_path: Path) -> None:
    folder = tmp_path / "register"
    rows = [{"external_ref": "E-1", "name": "e", "path": write(fake_photo(85, 0), folder, "e.png")}]
    run_import(db, write_manifest(folder / "manifest.csv", rows))
    previous = os.umask(0o022)
    try:
        everyone = db.exporter.select([], None, True)
        db.exporter.export(everyone, tmp_path / "out")
        db.exporter.export(everyone, tmp_path / "out.zip")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "out.zip").stat().st_mode) == 0o600
    made = [tmp_path / "out", *(tmp_path / "out").rglob("*")]
    assert len(made) >= 5
    for path in made:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))

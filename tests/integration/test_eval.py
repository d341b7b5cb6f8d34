"""`facedb calibrate` (which runs `facedb eval`) on the 5-celebrity set, as an operator runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from facedb.cli import main
from facedb.config import Settings, get_settings
from facedb.evaluation.protocol import EvalConfig, photo_ages, run, split
from facedb.evaluation.render import table as render_table
from facedb.models.sample_data import photos
from facedb.pipeline.analyzer import FaceAnalyzer
from facedb.pipeline.recipes import DEFAULT

pytestmark = pytest.mark.models

REPORT_KEYS = {
    "schema", "dataset", "protocol", "seed", "gallery_per_person", "holdout", "gallery",
    "probes", "skipped", "model_version", "rank1", "rank5", "rank10", "rank20", "ranks",
    "tar_at_far", "fnir_at_fpir", "threshold", "configured", "scores",
}  # fmt: skip


def test_split_is_deterministic_and_disjoint(celebrity: Path) -> None:
    first = split(celebrity / "train", EvalConfig(seed=7))
    assert first == split(celebrity / "train", EvalConfig(seed=7))
    gallery, mated, nonmated = first
    assert len(gallery) == 4 and len(nonmated) > 0  # one person of five held out
    for person, files in gallery.items():
        assert len(files) == 3 and not set(files) & set(mated[person])


def test_calibrate_reports_and_writes_the_threshold(
    celebrity: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The command itself, in this process (the models are loaded once per test session)."""
    monkeypatch.setenv("FACEDB_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    assert Settings().match_threshold is None  # unset: the recipe's own is in force
    configured_before = DEFAULT.match_threshold
    status = main(["calibrate", str(celebrity / "train"), "--json", "--far", "0.01",
                   "--plot", str(tmp_path / "det.png")])  # fmt: skip
    output = capsys.readouterr()
    assert status == 0, output.err[-2000:]
    report = json.loads(output.out)
    assert set(report) >= REPORT_KEYS
    assert report["schema"] == "facedb-eval/2"
    assert report["protocol"] == "hold-out"
    for entry in [*report["ranks"].values(), *report["fnir_at_fpir"].values()]:
        assert entry["low"] <= entry["value"] <= entry["high"]
    configured = report["configured"]["match_threshold"]
    assert configured["threshold"] == pytest.approx(configured_before)
    assert 0.0 <= configured["far"] <= 1.0 and 0.0 < configured["tar"] <= 1.0
    assert set(report["tar_at_far"]) == {"0.01", "0.001"}
    assert set(report["fnir_at_fpir"]) == {"0.01", "0.003", "0.001"}
    assert report["probes"]["mated"] >= 50 and report["probes"]["nonmated"] >= 10
    assert report["rank1"] >= 0.95
    scores = report["scores"]
    assert scores["nonmated_median"] < report["threshold"]["value"] < scores["mated_median"]
    for item in report["skipped"]:
        assert set(item) == {"path", "stage", "reason"}
    assert (tmp_path / "det.png").stat().st_size > 10_000
    quality = report["quality"]  # error versus discard by the faces' measured quality
    assert quality["pairs"] == scores["mated_pairs"] and quality["fmr"] == 0.01
    assert set(quality["set_aside"]) == {"0.05", "0.1", "0.2"}
    for entry in quality["set_aside"].values():
        assert entry["interval"][0] <= entry["fnmr"] <= entry["interval"][1]
    said = render_table(report)
    assert "the lowest-quality 10% miss" in said or "no mated pair missed" in said
    assert Settings().match_threshold == pytest.approx(report["threshold"]["value"])


def test_open_set_enrolls_every_distractor_and_searches_the_rest(
    celebrity: Path, tmp_path: Path, analyzer: FaceAnalyzer
) -> None:
    """Four persons with one gallery photo each; a fifth person's photos are distractors."""
    people = photos(celebrity / "train")
    root, distractors = tmp_path / "people", tmp_path / "distractors"
    distractors.mkdir()
    names = sorted(people)
    for name in names[:4]:
        (root / name).mkdir(parents=True)
        for path in people[name][:4]:
            (root / name / path.name).write_bytes(path.read_bytes())
    for path in people[names[4]][:5]:
        (distractors / path.name).write_bytes(path.read_bytes())
    config = EvalConfig(
        gallery_per_person=1, holdout=0.0, distractors=distractors, progress=False, bootstrap=200
    )
    report = run(root, Settings(), config, analyzer)
    assert report["protocol"] == "open-set"
    skipped_gallery = sum(s["stage"] == "gallery" for s in report["skipped"])
    assert report["gallery"]["persons"] == report["gallery"]["photos"]
    assert report["gallery"]["persons"] + skipped_gallery == 4 + 5
    assert report["probes"]["mated"] == 4 * 3 and report["probes"]["nonmated"] == 0
    # Each mated search scored without its mate is a non-mated search.
    assert report["probes"]["nonmated_searches"] == 12
    assert report["rank1"] >= 0.9


def test_cross_age_enrolls_the_earliest_photo_and_reports_by_gap(
    celebrity: Path, tmp_path: Path, analyzer: FaceAnalyzer
) -> None:
    """Ages from a CSV: each person's youngest photo is enrolled, the oldest searched."""
    root = celebrity / "train"
    people = photos(root)
    rows = ["path,age"]
    gaps = {}
    for i, (name, files) in enumerate(sorted(people.items())):
        gap = (3, 8, 15, 25, 40)[i]
        gaps[name] = gap
        rows.append(f"{name}/{files[0].name},10")
        rows.append(f"{name}/{files[1].name},{10 + gap}")
        rows.append(f"{name}/{files[2].name},{10 + gap // 2}")
    csv_path = tmp_path / "ages.csv"
    csv_path.write_text("\n".join(rows) + "\n")
    assert len(photo_ages(root, csv_path)) == 15
    config = EvalConfig(ages=csv_path, progress=False, bootstrap=200)
    report = run(root, Settings(), config, analyzer)
    assert report["protocol"] == "cross-age"
    assert report["gallery"]["persons"] == 5 and report["probes"]["mated"] == 5
    buckets = {b["years"]: b for b in report["by_age_gap"]}
    assert [b["searches"] for b in report["by_age_gap"]] == [1, 1, 1, 2]
    assert set(buckets) == {"0-4", "5-9", "10-19", "20+"}
    for bucket in report["by_age_gap"]:
        assert bucket["rank1"]["value"] <= bucket["rank20"]["value"] == 1.0


def test_ages_in_file_names(tmp_path: Path) -> None:
    for name in ("anna_4.jpg", "anna_31.jpg", "001A02.JPG", "001A22a.JPG", "nobody.jpg"):
        folder = tmp_path / name[:3]
        folder.mkdir(exist_ok=True)
        (folder / name).write_bytes(b"x")
    ages = {p.name: a for p, a in photo_ages(tmp_path, None).items()}
    assert ages == {"anna_4.jpg": 4, "anna_31.jpg": 31, "001A02.JPG": 2, "001A22a.JPG": 22}

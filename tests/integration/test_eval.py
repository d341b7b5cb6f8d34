"""`facedb calibrate` (which runs `facedb eval`) on the 5-celebrity set, as an operator runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from facedb.config import Settings
from facedb.evaluation.protocol import EvalConfig, split

pytestmark = pytest.mark.models

REPORT_KEYS = {
    "schema", "dataset", "seed", "gallery_per_person", "holdout", "gallery", "probes",
    "skipped", "rank1", "rank5", "tar_at_far", "fnir_at_fpir", "threshold", "scores",
}  # fmt: skip


def test_split_is_deterministic_and_disjoint(celebrity: Path) -> None:
    first = split(celebrity / "train", EvalConfig(seed=7))
    assert first == split(celebrity / "train", EvalConfig(seed=7))
    gallery, mated, nonmated = first
    assert len(gallery) == 4 and len(nonmated) > 0  # one person of five held out
    for person, files in gallery.items():
        assert len(files) == 3 and not set(files) & set(mated[person])


def test_calibrate_reports_and_writes_the_threshold(celebrity: Path, tmp_path: Path) -> None:
    env = {**os.environ, "FACEDB_DATA_DIR": str(tmp_path / "data")}
    result = subprocess.run(
        [sys.executable, "-m", "facedb.cli", "calibrate", str(celebrity / "train"),
         "--json", "--far", "0.01", "--plot", str(tmp_path / "det.png")],
        capture_output=True, text=True, timeout=900, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert set(report) >= REPORT_KEYS
    assert report["schema"] == "facedb-eval/1"
    assert set(report["tar_at_far"]) == {"0.01", "0.001"}
    assert set(report["fnir_at_fpir"]) == {"0.01", "0.003", "0.001"}
    assert report["probes"]["mated"] >= 50 and report["probes"]["nonmated"] >= 10
    assert report["rank1"] >= 0.95
    scores = report["scores"]
    assert scores["nonmated_median"] < report["threshold"]["value"] < scores["mated_median"]
    for item in report["skipped"]:
        assert set(item) == {"path", "stage", "reason"}
    assert (tmp_path / "det.png").stat().st_size > 10_000
    os.environ["FACEDB_DATA_DIR"] = str(tmp_path / "data")
    assert Settings().match_threshold == pytest.approx(report["threshold"]["value"])

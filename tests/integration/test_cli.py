"""`facedb analyze` and `facedb models status` as an operator runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from facedb.models.sample_data import photos
from facedb.pipeline.recipes import DEFAULT, FUSED_VERSION

pytestmark = pytest.mark.models


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "facedb.cli", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **env},
    )


def test_models_status_reports_every_model_valid() -> None:
    result = run_cli("models", "status", "--json")
    assert result.returncode == 0, result.stderr
    statuses = json.loads(result.stdout)
    assert {"facenet-128d", "age-gender/age-v1.onnx", "mtcnn/onet"} <= {s["name"] for s in statuses}
    assert all(s["valid"] for s in statuses)


def test_analyze_reports_every_photo_and_libraries_stay_quiet(
    celebrity: Path, tmp_path: Path
) -> None:
    photo = photos(celebrity / "val")["elton_john"][0]
    junk = tmp_path / "notes.jpg"
    junk.write_text("not a photo")
    nowhere = tmp_path / "nowhere.jpg"
    result = run_cli("analyze", "--json", str(photo), str(junk), str(nowhere))
    assert result.returncode == 1  # a photo failed
    reports = json.loads(result.stdout)
    assert [r["path"] for r in reports] == [str(photo), str(junk), str(nowhere)]
    good, bad, missing = reports
    assert good["error"] is None and len(good["faces"]) == 1
    face = good["faces"][0]
    assert set(face["box"]) == {"x", "y", "w", "h"}
    assert face["gender"] == "male" and 0.5 <= face["gender_probability"] <= 1
    assert 20 <= face["age"] <= 90
    assert 0 < face["confidence"] <= 1
    quality = face["quality"]  # {score, components: {...}, limiting}, as the issue asks
    assert 0 <= quality["score"] <= 100 and quality["limiting"] in quality["components"]
    assert quality["components"]["subject_age"]["value"] == pytest.approx(face["age"], abs=1e-3)
    assert len(face["embedding"]) == 384  # the default: FaceNet, dlib and SFace side by side
    assert good["recipe"] == "facenet+dlib+sface-weighted"
    assert good["model_version"] == DEFAULT.version
    assert bad["faces"] == [] and bad["error"]["code"] == "not_an_image"
    assert missing["error"]["code"] == "file_unreadable"  # its own documented code
    noisy = [line for line in result.stderr.splitlines() if " INFO " in line or "I0000" in line]
    assert noisy == [], noisy

    # The fused recipe reports its own embedding: FaceNet's and dlib's side by side.
    fused = run_cli("analyze", "--json", str(photo), FACEDB_RECIPE="facenet+dlib")
    assert fused.returncode == 0, fused.stderr[-2000:]
    (report,) = json.loads(fused.stdout)
    assert report["recipe"] == "facenet+dlib" and report["model_version"] == FUSED_VERSION
    vector = np.asarray(report["faces"][0]["embedding"])
    assert vector.shape == (256,) and np.linalg.norm(vector) == pytest.approx(1, abs=1e-5)
    # FaceNet's part of either is the same FaceNet embedding.
    facenet_part = vector[:128] / np.linalg.norm(vector[:128])
    default_part = np.asarray(face["embedding"][:128])
    assert float(facenet_part @ default_part / np.linalg.norm(default_part)) > 0.9999
    unknown = run_cli("analyze", str(photo), FACEDB_RECIPE="facenet-xl")
    assert unknown.returncode == 1
    assert "FACEDB_RECIPE: unknown recipe 'facenet-xl'; choose one of" in unknown.stderr


def test_help_is_plain_text_and_status_columns_align() -> None:
    helptext = run_cli("--help").stdout
    assert "``" not in helptext and ".venv/bin/facedb" in helptext
    models, recipes = run_cli("models", "status").stdout.split("\n\n")
    lines = models.splitlines()
    starts = {line.index(" /") for line in lines}  # every path column starts at one offset
    assert len(lines) >= 5 and len(starts) == 1
    assert "(default, chosen)" in recipes and "facenet+dlib" in recipes

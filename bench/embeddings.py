"""Each dev-set photo's largest face embedded by the service's own networks, and the one
embeddings cache every bench reads them through (``--cache``, outside the repository).

Every photo goes through the service's pipeline once (detector, the largest face, the
FaceNet recipe, the age estimate); dlib's descriptor is computed on the same box (its
150x150 chip: served alone, and with its mirror averaged in), and SFace on ArcFace's chip
and its mirror, each by the service's network objects.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np
from numpy.typing import NDArray

from bench.datasets import UtkFace
from facedb.domain import NetworkName
from facedb.pipeline.analyzer import FaceAnalyzer
from facedb.pipeline.base import LocatedFace
from facedb.pipeline.chips import sface_chip
from facedb.pipeline.decode import decode_image
from facedb.pipeline.dlib_resnet import DlibDescriptor
from facedb.pipeline.recipes import MARGIN_MIRROR_VERSION
from facedb.pipeline.sface import SFaceRecogniser
from facedb.pipeline.types import Detection

Arrays = dict[str, NDArray[Any]]
T = TypeVar("T")


@dataclass
class Embedded:
    """One photo: its largest face's embeddings (NaN rows where no face was found)."""

    facenet: NDArray[np.float32]
    dlib: NDArray[np.float32]  # the chip alone (served)
    age: NDArray[np.float32]
    dlib_mirror: NDArray[np.float32]  # the chip and its mirror, averaged
    sface: NDArray[np.float32]  # the chip and its mirror, averaged (served)


def largest_face(
    path: Path, analyzer: FaceAnalyzer
) -> tuple[LocatedFace, NDArray[np.uint8]] | None:
    """Return the photo's largest face as the service finds it, and the photo (BGR)."""
    data = path.read_bytes()
    located = analyzer.locate(data)
    if not located:
        return None
    face = max(located, key=lambda f: f.detection.box.w * f.detection.box.h)
    return face, decode_image(data, 1 << 62, 1 << 62).bgr


def largest_faces(
    paths: list[Path], analyzer: FaceAnalyzer, every: int
) -> Iterator[tuple[int, LocatedFace, NDArray[np.uint8]]]:
    """Each photo's number, largest face and pixels (photos without a face left out), saying
    how far it got every ``every`` photos."""
    started = time.perf_counter()
    for i, path in enumerate(paths):
        found = largest_face(path, analyzer)
        if found is not None:
            yield i, *found
        if i % every == every - 1:
            print(
                f"  {i + 1}/{len(paths)} photos, {time.perf_counter() - started:.0f} s", flush=True
            )


def embed_all(paths: list[Path], analyzer: FaceAnalyzer) -> Embedded:
    """Each photo's largest face through the service's FaceNet recipe, dlib and SFace."""
    dlib_model = analyzer.networks[NetworkName.DLIB]
    sface = analyzer.networks[NetworkName.SFACE]
    assert isinstance(dlib_model, DlibDescriptor) and isinstance(sface, SFaceRecogniser)
    analyzer.use(MARGIN_MIRROR_VERSION)
    n = len(paths)
    facenet = np.full((n, 128), np.nan, np.float32)
    dlib = np.full((n, 128), np.nan, np.float32)
    dlib_mirror = np.full((n, 128), np.nan, np.float32)
    sface_vectors = np.full((n, 128), np.nan, np.float32)
    age = np.full(n, np.nan, np.float32)
    for i, face, bgr in largest_faces(paths, analyzer, every=100):
        facenet[i] = analyzer.embed([face])[0].embedding
        chip, mirrored = dlib_model.views(bgr, face.detection, mirror=True)
        dlib[i], other = dlib_model.embed([chip[None], mirrored[None]])
        both = dlib[i] + other
        dlib_mirror[i] = both / np.linalg.norm(both)
        sface_vectors[i] = sface.embed([sface_chip(bgr, face.detection, {})])[0]
        if face.attributes is not None:
            age[i] = face.attributes.age
    return Embedded(facenet, dlib, age, dlib_mirror, sface_vectors)


def cached(name: str, paths: list[Path], make: Callable[[], Arrays], cache: Path,
           needs: str) -> Arrays:  # fmt: skip
    """Arrays made once per list of photos: read from ``cache/<name>.npz`` while it was made
    from the same paths and holds ``needs`` (else made again and written)."""
    file = cache / f"{name}.npz"
    if file.exists():
        saved = dict(np.load(file, allow_pickle=False))
        if list(saved.pop("paths")) == [str(p) for p in paths] and needs in saved:
            return saved
    result = make()
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(file, paths=np.array([str(p) for p in paths]), **result)
    return result


def embedded(name: str, paths: list[Path], analyzer: FaceAnalyzer | None, cache: Path) -> Embedded:
    """The photos' ``Embedded``, through the cache (``analyzer``: None to read the cache only,
    failing where it does not hold them)."""

    def make() -> Arrays:
        if analyzer is None:
            raise SystemExit(
                f"{cache / name}.npz does not hold these photos: run bench.register_scale first"
            )
        return _arrays(embed_all(paths, analyzer))

    arrays = cached(name, paths, make, cache, "sface")
    return Embedded(*(arrays[f.name] for f in fields(Embedded)))


def embedded_in_chunks(name: str, paths: list[Path], analyzer: FaceAnalyzer | None, cache: Path,
                       chunk: int = 1000) -> Embedded:  # fmt: skip
    """The photos' ``Embedded``, cached ``chunk`` photos at a time (``name-<first>``), so a
    longer list re-embeds only the photos a shorter one did not reach."""
    parts = [embedded(f"{name}-{start}", paths[start : start + chunk], analyzer, cache)
             for start in range(0, len(paths), chunk)]  # fmt: skip
    return Embedded(
        *(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Embedded))
    )


def _arrays(e: Embedded) -> Arrays:
    return {f.name: getattr(e, f.name) for f in fields(Embedded)}


# --- utk-dev's crops through the detector ------------------------------------------------
@dataclass
class Crop:
    age: int
    female: bool
    race: int
    bgr: NDArray[np.uint8]
    detection: Detection | None
    best_confidence: float


def utk_crops(root: Path, analyzer: FaceAnalyzer, border: float) -> list[Crop]:
    """Each utk-dev crop (padded by ``border`` of its side), labelled, with the detector's
    largest confident face in it (None where it finds none)."""
    crops = []
    for path in sorted(root.glob("*.jpg")):
        labelled = UtkFace.named(path)
        assert labelled is not None, path
        age, female, race = labelled.age, labelled.female, labelled.race
        bgr = decode_image(path.read_bytes(), 1 << 40, 1 << 40).bgr.copy()
        if border:
            pad = round(border * max(bgr.shape[:2]))
            bgr = np.asarray(
                cv2.copyMakeBorder(bgr, pad, pad, pad, pad, cv2.BORDER_CONSTANT), np.uint8
            )
        raw = analyzer.detector.detect(bgr)
        found = [d for d in raw if d.confidence >= 0.8 and min(d.box.w, d.box.h) >= 20]
        best = max(found, key=lambda d: d.box.w * d.box.h) if found else None
        crops.append(
            Crop(age, female, race, bgr, best, max((d.confidence for d in raw), default=0))
        )
    return crops

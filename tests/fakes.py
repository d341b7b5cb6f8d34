"""A deterministic stand-in for the face pipeline, so rule and route tests need no networks.

The convention: a *face* is a square of pixels whose green channel is 255, red channel at
most 120 and blue channel 1-254. The blue value names the identity (who it is), the red
value is the age; the square's position and size are the detection box. ``fake_photo``
draws such photos as PNG (lossless, so the values survive); anything else is decoded by the
real decoder (so bad files fail exactly as with the real pipeline) and shows no face.

Two photos of one identity embed close together (cosine about 0.9), two identities far
apart (about 0 ± 0.1); each photo's own noise comes from its bytes.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from facedb.config import Settings
from facedb.domain import EstimatedGender, NetworkName
from facedb.domain import QualityComponent as C
from facedb.pipeline import quality
from facedb.pipeline.attributes import AgeGender
from facedb.pipeline.base import LocatedFace, PipelineAnalyzer
from facedb.pipeline.embed import DIMENSION, MODEL_NAME
from facedb.pipeline.recipes import BUILT_IN, Recipe, RecipeBook
from facedb.pipeline.types import Box, Detection, Quality, Views
from facedb.pipeline.vectors import average_views

NOISE = 0.33  # a photo's own share of its embedding
# The recipe whose embeddings the markers stand for: FaceNet's, 128 values.
FAKE_RECIPE = BUILT_IN["facenet"]


def identity_vector(identity: int) -> NDArray[np.float32]:
    """Return the unit vector an identity's photos embed around."""
    vector = np.random.default_rng(1_000 + identity).standard_normal(DIMENSION)
    return np.asarray(vector / np.linalg.norm(vector), dtype=np.float32)


class FakeAnalyzer(PipelineAnalyzer):
    """The pipeline with fake networks: a detector and an age/gender estimator that read the
    marker squares, and a FaceNet whose "chip" is the marker's vector (see the module
    docstring). Everything else (batching, recipes, an age axis removed) is the real one's."""

    model_name = MODEL_NAME

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, RecipeBook(), _MarkerDetector(settings.min_face_size),
                         _MarkerAges(), {NetworkName.FACENET: _PassThrough()},
                         _marker_quality)  # fmt: skip
        self.target = self.recipe = FAKE_RECIPE  # whatever FACEDB_RECIPE says
        self.calls = 0  # photos located (tests check work is not repeated)

    def locate(self, data: bytes) -> list[LocatedFace]:
        self.calls += 1
        return super().locate(data)

    def views(self, recipe: Recipe, bgr: NDArray[np.uint8], detection: Detection) -> Views:
        """The marker's identity vector and the photo's own noise, whatever the recipe."""
        marker = _marker_at(bgr, detection)
        seed = int.from_bytes(hashlib.sha256(bgr.tobytes()).digest()[:8], "little")
        noise = np.random.default_rng(seed + detection.box.x).standard_normal(DIMENSION)
        vector = identity_vector(marker.identity) + NOISE * noise / np.linalg.norm(noise)
        return (np.asarray(vector / np.linalg.norm(vector), dtype=np.float32)[None, :],)


class _PassThrough:
    """A "network" whose input is the embedding already."""

    dimension = DIMENSION
    releases_gil = False
    loaded = True

    def embed(self, views: list[NDArray[Any]]) -> NDArray[np.float32]:
        if not views:
            return np.zeros((0, DIMENSION), np.float32)
        return average_views(np.concatenate(views).astype(np.float32), [len(v) for v in views])

    def load(self) -> None:
        """Nothing to load."""


class _MarkerDetector:
    loaded = True

    def __init__(self, min_side: int) -> None:
        self.min_side = min_side

    def detect(self, bgr: NDArray[np.uint8]) -> list[Detection]:
        return [m.detection for m in _markers(bgr, self.min_side)]

    def load(self) -> None:
        """Nothing to load."""


class _MarkerAges:
    loaded = True

    def estimate(
        self, bgr: NDArray[np.uint8], detections: list[Detection]
    ) -> list[AgeGender | None]:
        out: list[AgeGender | None] = []
        for detection in detections:
            marker = _marker_at(bgr, detection)
            male = marker.identity % 2 == 0
            gender = EstimatedGender.MALE if male else EstimatedGender.FEMALE
            out.append(AgeGender(float(marker.age), gender, 0.95))
        return out

    def load(self) -> None:
        """Nothing to load."""


def _marker_quality(bgr: NDArray[np.uint8], detection: Detection, age: float | None) -> Quality:
    """A marker's quality: the real rating of its inter-eye distance (0.4 of its side),
    confidence (0.99) and age (its red value), every pixel-based component fine (a flat
    square would measure as no face at all). A side-80 marker of age 30 scores 85, one of
    age 3 scores 19 (a young child's face)."""
    measured = quality.measure(bgr, detection, age)
    fine = {C.SHARPNESS: 0.1, C.LUMINANCE_MEAN: 128.0, C.UNDER_EXPOSURE: 0.0,
            C.OVER_EXPOSURE: 0.0, C.DYNAMIC_RANGE: 7.0, C.ILLUMINATION_UNIFORMITY: 0.05,
            C.COMPRESSION: 1.0, C.HEAD_POSE_YAW: 0.0}  # fmt: skip
    return quality.rated({**measured, **fine})


@dataclass(frozen=True)
class _Marker:
    detection: Detection
    identity: int
    age: int


def _marker_at(bgr: NDArray[np.uint8], detection: Detection) -> _Marker:
    """The marker inside a detection's box (its identity and age: the median of its colours)."""
    box = detection.box
    inside = bgr[box.y : box.y + box.h, box.x : box.x + box.w]
    square = (inside[:, :, 1] == 255) & (inside[:, :, 2] <= 120)
    return _Marker(detection, int(np.median(inside[:, :, 0][square])),
                   int(np.median(inside[:, :, 2][square])))  # fmt: skip


def _markers(bgr: NDArray[np.uint8], min_side: int) -> list[_Marker]:
    blue, green, red = bgr[:, :, 0], bgr[:, :, 1], bgr[:, :, 2]
    mask = ((green == 255) & (red <= 120) & (blue >= 1) & (blue <= 254)).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=4)
    found = []
    for label in range(1, count):
        x, y, w, h, _area = (int(v) for v in stats[label])
        if min(w, h) < min_side:
            continue
        inside = labels == label
        box = Box(x, y, w, h)
        eyes = ((x + round(0.7 * w), y + round(0.4 * h)), (x + round(0.3 * w), y + round(0.4 * h)))
        detection = Detection(box, 0.99, left_eye=eyes[0], right_eye=eyes[1])
        identity = int(np.median(blue[inside]))
        found.append(_Marker(detection, identity, int(np.median(red[inside]))))
    return sorted(found, key=lambda m: (m.detection.box.y, m.detection.box.x))


def fake_photo(
    identity: int | list[int],
    variant: int = 0,
    age: int = 30,
    side: int = 80,
    size: tuple[int, int] = (240, 200),
    sides: list[int] | None = None,
) -> bytes:
    """Return a PNG showing one face per identity (left to right), over a background that
    differs with ``variant`` (so each variant is another photo, with its own bytes).

    ``sides`` gives each face its own size (a small face behind the person photographed).
    """
    identities = identity if isinstance(identity, list) else [identity]
    width, height = size
    rng = np.random.default_rng(variant * 7919 + sum(identities))
    blocks = rng.integers(0, 200, size=(height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    canvas = np.kron(blocks, np.ones((8, 8, 1), dtype=np.uint8))[:height, :width].copy()
    x = 10
    for n, who in enumerate(identities):
        face = sides[n] if sides else side
        y = (height - face) // 2
        canvas[y : y + face, x : x + face] = (min(age, 120), 255, who)  # RGB
        x += face + 20
    buffer = io.BytesIO()
    Image.fromarray(canvas).save(buffer, format="PNG")
    return buffer.getvalue()


def no_face_photo(size: tuple[int, int] = (300, 200)) -> bytes:
    """Return a PNG landscape: sky over grass, no face."""
    width, height = size
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    canvas[: height // 2] = (135, 190, 235)
    canvas[height // 2 :] = (60, 120, 50)
    buffer = io.BytesIO()
    Image.fromarray(canvas).save(buffer, format="PNG")
    return buffer.getvalue()

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

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from facedb.config import Settings
from facedb.domain import EstimatedGender
from facedb.errors import ImageError
from facedb.pipeline.age_axis import AxisRemovedRecipe
from facedb.pipeline.attributes import AgeGender
from facedb.pipeline.base import LocatedFace
from facedb.pipeline.decode import decode_image
from facedb.pipeline.embed import DIMENSION, MODEL_NAME
from facedb.pipeline.recipes import MARGIN_MIRROR_VERSION, RECIPES, display_crop, recipe_of
from facedb.pipeline.types import Box, Detection, Face

NOISE = 0.33  # a photo's own share of its embedding
# The recipe whose embeddings the markers stand for: FaceNet's, 128 values.
FAKE_RECIPE = RECIPES[MARGIN_MIRROR_VERSION]


def identity_vector(identity: int) -> NDArray[np.float32]:
    """Return the unit vector an identity's photos embed around."""
    vector = np.random.default_rng(1_000 + identity).standard_normal(DIMENSION)
    return np.asarray(vector / np.linalg.norm(vector), dtype=np.float32)


class FakeAnalyzer:
    """An ``Analyzer`` that reads faces from marker squares (see the module docstring)."""

    model_name = MODEL_NAME
    dimension = DIMENSION

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._version = FAKE_RECIPE.version
        self.calls = 0  # photos located (tests check work is not repeated)

    @property
    def model_version(self) -> str:
        return self._version

    @property
    def target_version(self) -> str:
        return FAKE_RECIPE.version

    def use(self, model_version: str) -> None:
        self._version = recipe_of(model_version).version

    def load(self) -> None:
        """Nothing to load."""

    def loaded(self) -> dict[str, bool]:
        return {"detector": True, "embedder": True, "age_gender": True}

    def locate(self, data: bytes) -> list[LocatedFace]:
        self.calls += 1
        s = self.settings
        bgr = decode_image(data, s.max_image_bytes, s.max_image_pixels).bgr
        seed = int.from_bytes(hashlib.sha256(data).digest()[:8], "little")
        located = []
        for n, marker in enumerate(_markers(bgr, s.min_face_size)):
            noise = np.random.default_rng(seed + n).standard_normal(DIMENSION)
            vector = identity_vector(marker.identity) + NOISE * noise / np.linalg.norm(noise)
            vector = np.asarray(vector / np.linalg.norm(vector), dtype=np.float32)
            gender = EstimatedGender.MALE if marker.identity % 2 == 0 else EstimatedGender.FEMALE
            located.append(
                LocatedFace(
                    detection=marker.detection,
                    views=(vector[None, :],),
                    model_version=self._version,
                    attributes=AgeGender(float(marker.age), gender, 0.95),
                    thumbnail=display_crop(bgr, marker.detection, 160),
                )
            )
        return located

    def embed(self, located: list[LocatedFace]) -> list[Face]:
        return [
            Face(
                detection=f.detection,
                embedding=_as_made_by(f.model_version, f.views[0][0]),
                model_version=f.model_version,
                age=f.attributes.age if f.attributes else None,
                gender=f.attributes.gender if f.attributes else None,
                gender_probability=f.attributes.gender_probability if f.attributes else None,
                chip=f.thumbnail,
            )
            for f in located
        ]

    def analyze(self, data: bytes) -> list[Face]:
        return self.embed(self.locate(data))

    def analyze_many(self, photos: list[bytes]) -> list[list[Face] | ImageError]:
        results: list[list[Face] | ImageError] = []
        for data in photos:
            try:
                results.append(self.analyze(data))
            except ImageError as exc:
                results.append(exc)
        return results

    def embed_stored(self, data: bytes, detections: list[Detection]) -> NDArray[np.float32]:
        faces = {f.detection.box: f.embedding for f in self.analyze(data)}
        return np.stack([faces[d.box] for d in detections]).astype(np.float32)


def _as_made_by(model_version: str, vector: NDArray[np.float32]) -> NDArray[np.float32]:
    """The marker's vector as the recipe of ``model_version`` stores it (an age axis removed
    when it removes one), as the real pipeline does."""
    recipe = recipe_of(model_version)
    if isinstance(recipe, AxisRemovedRecipe):
        return recipe.derive(np.asarray(vector, np.float32)[None, :])[0]
    return np.asarray(vector, dtype=np.float32)


@dataclass(frozen=True)
class _Marker:
    detection: Detection
    identity: int
    age: int


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

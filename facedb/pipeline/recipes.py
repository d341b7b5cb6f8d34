"""How a detected face becomes FaceNet's input: the chip geometry, colour order and scaling.

Two recipes exist, each named by the model version its embeddings are stored under:

- ``LegacyRecipe``: deepface's way (a tight box, rotated on the eyes, aspect-padded, fed in BGR).
  Kept so a database made with it keeps serving until ``facedb reindex --re-embed``.
- ``MarginMirrorRecipe`` (current): close to the input the weights were trained on (David Sandberg's
  facenet: the MTCNN box with a margin, resized to 160x160, RGB, prewhitened), widened to
  a square so the face keeps its shape and turned so the eyes are level, and embedded with
  its mirror image, the two embeddings averaged.

docs/ACCURACY.md gives the measurements that chose between them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np
from numpy.typing import NDArray

from facedb.pipeline.types import Detection

SIDE = 160
LEGACY_VERSION = "facenet-128d/keras-facenet-6acdd8fb/normalization=Facenet"
MARGIN_MIRROR_VERSION = "facenet-128d/keras-facenet-6acdd8fb/margin10-square-level-rgb-mirror"


def prewhiten(rgb: NDArray[np.uint8]) -> NDArray[np.float32]:
    """Return the image scaled to zero mean and unit deviation (facenet's ``prewhiten``)."""
    x = rgb.astype(np.float32)
    std = max(float(x.std()), 1.0 / math.sqrt(x.size))
    return np.asarray((x - x.mean()) / std, dtype=np.float32)


def margin_crop(
    bgr: NDArray[np.uint8],
    detection: Detection,
    margin: float,
    rotate: bool = False,
    square: bool = False,
    side: int = SIDE,
) -> NDArray[np.uint8]:
    """Return the box grown by ``margin`` (share of its size, split between both sides),
    resampled to ``side`` x ``side`` (BGR uint8); outside the photo is black.

    ``square`` widens the shorter side first so the face keeps its aspect; ``rotate``
    levels the eyes about the box centre.
    """
    box = detection.box
    cx, cy = box.x + box.w / 2.0, box.y + box.h / 2.0
    w, h = box.w * (1.0 + margin), box.h * (1.0 + margin)
    if square:
        w = h = max(w, h)
    angle = 0.0
    if rotate and detection.left_eye and detection.right_eye:
        (lx, ly), (rx, ry) = detection.right_eye, detection.left_eye  # observer's left first
        angle = math.atan2(ry - ly, rx - lx)
    # Shrink large faces with area averaging first: sampling straight down aliases.
    shrink = min(1.0, 2.0 * side / max(w, h))
    if shrink < 1.0:
        reach = math.hypot(w, h) / 2.0 + 2.0
        x0, y0 = max(0, int(cx - reach)), max(0, int(cy - reach))
        x1, y1 = min(bgr.shape[1], int(cx + reach) + 1), min(bgr.shape[0], int(cy + reach) + 1)
        region = bgr[y0:y1, x0:x1]
        size = (max(1, round(region.shape[1] * shrink)), max(1, round(region.shape[0] * shrink)))
        bgr = np.asarray(cv2.resize(region, size, interpolation=cv2.INTER_AREA), np.uint8)
        cx, cy, w, h = (cx - x0) * shrink, (cy - y0) * shrink, w * shrink, h * shrink
    cos, sin = math.cos(angle), math.sin(angle)
    sx, sy = side / w, side / h
    # destination = scale * rotate(-angle) * (source - centre) + side/2
    matrix = np.array(
        [
            [sx * cos, sx * sin, side / 2.0 - sx * (cos * cx + sin * cy)],
            [-sy * sin, sy * cos, side / 2.0 - sy * (-sin * cx + cos * cy)],
        ],
        dtype=np.float64,
    )
    out = cv2.warpAffine(
        bgr, matrix, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )
    return np.asarray(out, dtype=np.uint8)


def display_crop(bgr: NDArray[np.uint8], detection: Detection, side: int) -> NDArray[np.uint8]:
    """Return the face as people look at it: square, a margin around it, RGB."""
    return np.ascontiguousarray(
        margin_crop(bgr, detection, 0.3, square=True, side=side)[:, :, ::-1]
    )


class Recipe(Protocol):
    @property
    def version(self) -> str:
        """The model version its embeddings are stored under."""

    def views(self, bgr: NDArray[np.uint8], detection: Detection) -> NDArray[np.float32]:
        """Return the (views, 160, 160, 3) inputs whose embeddings are averaged."""


@dataclass(frozen=True)
class LegacyRecipe:
    """deepface.represent's input: its aligned tight chip, BGR, 'Facenet' normalisation."""

    version: str = LEGACY_VERSION

    def views(self, bgr: NDArray[np.uint8], detection: Detection) -> NDArray[np.float32]:
        from facedb.pipeline.align import aligned_chip

        return legacy_input(aligned_chip(bgr, detection))


def legacy_input(chip_bgr: NDArray[np.uint8]) -> NDArray[np.float32]:
    """Return the (1, 160, 160, 3) input exactly as deepface.represent prepares it."""
    from deepface.modules import preprocessing

    scaled = chip_bgr.astype(np.float32) / 255.0
    resized = preprocessing.resize_image(img=scaled, target_size=(SIDE, SIDE))
    return np.asarray(preprocessing.normalize_input(img=resized, normalization="Facenet"))


@dataclass(frozen=True)
class MarginMirrorRecipe:
    """The box + 10% margin made square, eyes levelled, RGB, prewhitened, and its mirror."""

    margin: float = 0.1
    version: str = MARGIN_MIRROR_VERSION

    def views(self, bgr: NDArray[np.uint8], detection: Detection) -> NDArray[np.float32]:
        crop = margin_crop(bgr, detection, self.margin, rotate=True, square=True)
        chip = prewhiten(crop[:, :, ::-1])
        return np.stack([chip, np.ascontiguousarray(chip[:, ::-1])])


_ALL: tuple[Recipe, ...] = (LegacyRecipe(), MarginMirrorRecipe())
RECIPES: dict[str, Recipe] = {r.version: r for r in _ALL}
CURRENT: Recipe = RECIPES[MARGIN_MIRROR_VERSION]

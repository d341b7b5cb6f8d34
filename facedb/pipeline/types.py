"""Value types that cross the pipeline's boundary."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from facedb.domain import EstimatedGender
from facedb.records import Box


@dataclass(frozen=True)
class Detection:
    """What the detector found, scaled back to the original photo."""

    box: Box
    confidence: float
    left_eye: tuple[int, int] | None
    right_eye: tuple[int, int] | None

    def landmarks(self) -> dict[str, list[int] | None]:
        return {
            "left_eye": list(self.left_eye) if self.left_eye else None,
            "right_eye": list(self.right_eye) if self.right_eye else None,
        }


@dataclass
class Face:
    """One analysed face. ``embedding`` is float32 (128,), L2-normalised."""

    detection: Detection
    embedding: NDArray[np.float32]
    model_version: str  # the recipe that made the embedding
    age: float | None
    gender: EstimatedGender | None
    gender_probability: float | None
    chip: NDArray[np.uint8] = field(repr=False)  # aligned face, RGB uint8, for display

    @property
    def box(self) -> Box:
        return self.detection.box

    def as_dict(self, with_embedding: bool = False) -> dict[str, object]:
        out: dict[str, object] = {
            "box": self.box.as_dict(),
            "landmarks": self.detection.landmarks(),
            "confidence": round(self.detection.confidence, 4),
            "age": self.age,
            "gender": self.gender,
            "gender_probability": self.gender_probability,
        }
        if with_embedding:
            out["embedding"] = [float(v) for v in self.embedding]
        return out

"""Value types that cross the pipeline's boundary."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from facedb.domain import EstimatedGender
from facedb.domain import QualityComponent as C
from facedb.records import Box, FaceRecord


@dataclass(frozen=True)
class Detection:
    """What the detector found, scaled back to the original photo."""

    box: Box
    confidence: float
    left_eye: tuple[int, int] | None
    right_eye: tuple[int, int] | None
    # Seen at detection only (quality's head pose); not stored, so None for a stored face.
    nose: tuple[int, int] | None = None

    @classmethod
    def stored(cls, face: FaceRecord) -> Detection:
        """Return a stored face's detection (its box, eyes and confidence)."""
        landmarks = face.landmarks or {}
        left, right = landmarks.get("left_eye"), landmarks.get("right_eye")
        return cls(face.box, face.confidence, tuple(left) if left else None,
                   tuple(right) if right else None)  # fmt: skip

    def landmarks(self) -> dict[str, list[int] | None]:
        return {
            "left_eye": list(self.left_eye) if self.left_eye else None,
            "right_eye": list(self.right_eye) if self.right_eye else None,
        }


@dataclass(frozen=True)
class Measure:
    """One component of one face: its value (each unit: docs/QUALITY.md) and its 0-100 score."""

    value: float
    score: int

    def as_dict(self) -> dict[str, float | int]:
        return {"value": round(self.value, 3), "score": self.score}


@dataclass(frozen=True)
class Quality:
    """A face's quality: each component, the unified score and the component limiting it,
    said in words."""

    score: int
    components: dict[C, Measure]
    limiting: C
    reason: str

    def as_dict(self) -> dict[str, object]:
        return {
            "score": self.score,
            "limiting": self.limiting.value,
            "reason": self.reason,
            "components": {c.value: m.as_dict() for c, m in self.components.items()},
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
    quality: Quality | None = None  # None: not measured (a face re-read from the store)

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
            "quality": self.quality.as_dict() if self.quality else None,
        }
        if with_embedding:
            out["embedding"] = [float(v) for v in self.embedding]
        return out


Views = tuple[NDArray[Any], ...]  # a face's inputs, one array per part of its recipe


class Network(Protocol):
    """A recognition network: inputs of a face → one unit vector (built on first use).

    ``releases_gil``: whether the network computes without holding Python's GIL (ONNX
    Runtime does; dlib's descriptor does not), so it can run beside another network.
    """

    dimension: int
    releases_gil: bool

    def embed(self, views: list[NDArray[Any]]) -> NDArray[np.float32]:
        """Return (n, dimension) unit vectors, face i's views (v, ...) averaged."""

    def load(self) -> None:
        """Build the network now rather than on first use."""

    @property
    def loaded(self) -> bool:
        """Whether it is built."""


Networks = dict[str, Network]
# A part's chip: the photo (BGR), one face and the networks → that part's views of it.
ChipFn = Callable[[NDArray[np.uint8], Detection, Networks], NDArray[Any]]


@runtime_checkable
class FindsOwnChip(Protocol):
    """A network that places its own chip (dlib's descriptor: its 5-point shape predictor)."""

    def views(self, bgr: NDArray[np.uint8], detection: Detection) -> NDArray[Any]:
        """Return the network's views of one face."""

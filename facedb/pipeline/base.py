"""What the services need of the face pipeline, whichever networks (or fakes) run it.

``FaceAnalyzer`` (``analyzer.py``) runs the real detector, FaceNet and the age/gender
networks; a deterministic stand-in with the same interface lets rule and route tests run
without them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from facedb.errors import ImageError
from facedb.pipeline.attributes import AgeGender
from facedb.pipeline.recipes import Views
from facedb.pipeline.types import Detection, Face


@dataclass
class LocatedFace:
    """A face after detection and alignment, before the (batched) embedding."""

    detection: Detection
    views: Views  # the recipe's model inputs: per part, (v, ...) views averaged
    model_version: str  # the recipe that made them
    attributes: AgeGender | None
    thumbnail: NDArray[np.uint8]  # RGB, square, for display


class Analyzer(Protocol):
    """Photo bytes → faces with embeddings, ages and genders."""

    @property
    def model_name(self) -> str:
        """The embedding network (stored beside every embedding)."""
        ...

    @property
    def model_version(self) -> str:
        """The recipe new embeddings are made with."""
        ...

    @property
    def target_version(self) -> str:
        """The chosen recipe (FACEDB_RECIPE): what an empty database takes and a re-embed
        moves to."""
        ...

    @property
    def dimension(self) -> int:
        """The length of its embeddings."""
        ...

    def use(self, model_version: str) -> None:
        """Embed with the recipe of ``model_version`` from now on (the index says which)."""
        ...

    def load(self) -> None:
        """Load every model now (start-up) rather than on the first photo."""
        ...

    def loaded(self) -> dict[str, bool]:
        """Which models are loaded (for health)."""
        ...

    def locate(self, data: bytes) -> list[LocatedFace]:
        """Decode, detect, align and estimate age and gender; raises an ImageError."""
        ...

    def embed(self, located: list[LocatedFace]) -> list[Face]:
        """Return the faces with their embeddings, computed in one batched call."""
        ...

    def analyze(self, data: bytes) -> list[Face]:
        """Return every face in one photo (``embed(locate(data))``)."""
        ...

    def analyze_many(self, photos: list[bytes]) -> list[list[Face] | ImageError]:
        """Analyse several photos; each entry is its faces or the error that refused it."""
        ...

    def embed_stored(self, data: bytes, detections: list[Detection]) -> NDArray[np.float32]:
        """Return the embeddings (n, d) of known faces of a stored photo with the current
        recipe (a re-embed)."""
        ...

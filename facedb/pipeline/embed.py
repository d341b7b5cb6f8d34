"""FaceNet-128d embeddings on ONNX Runtime, many faces per call.

The network is deepface's Keras FaceNet with the installed weights, converted to ONNX and
checked against TensorFlow when the models were installed (``models/convert.py``): the same
function, so embeddings stored by the TensorFlow runtime stay valid.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from facedb.models.catalog import FACENET_FILE
from facedb.pipeline import onnx
from facedb.pipeline.lazy import LazyModel
from facedb.pipeline.vectors import average_views

MODEL_NAME = "Facenet"
DIMENSION = 128


class OnnxRecogniser(LazyModel):
    """A recognition network on ONNX Runtime; ``embed`` runs one call per ``max_batch``
    inputs. FaceNet is one; an operator's recogniser (``models/cards.py``) another."""

    releases_gil = True  # ONNX Runtime computes with the GIL released

    def __init__(self, path: Path, name: str, dimension: int, max_batch: int = 32) -> None:
        super().__init__()
        self.path = path
        self.name = name
        self.dimension = dimension
        self.max_batch = max_batch

    def _build(self) -> Any:
        return onnx.session(self.path)

    def _call(self, model: Any, inputs: NDArray[np.float32]) -> NDArray[np.float32]:
        """Run the network on one batch of inputs; return its raw embeddings."""
        return onnx.run(model, inputs)[0]

    def embed(self, views: list[NDArray[np.float32]]) -> NDArray[np.float32]:
        """Return float32 (n, dimension) L2-normalised embeddings, one per face.

        ``views[i]`` is face i's (v, ...) model inputs (a recipe's views); their
        embeddings are summed before normalising, so v=2 (chip and mirror) averages them.
        """
        if not views:
            return np.zeros((0, self.dimension), dtype=np.float32)
        batch = np.concatenate(views, axis=0).astype(np.float32)
        outputs = []
        with self.using() as session:
            for start in range(0, len(batch), self.max_batch):
                outputs.append(self._call(session, batch[start : start + self.max_batch]))
        raw = np.concatenate(outputs, axis=0).astype(np.float32).reshape(len(batch), -1)
        return average_views(raw, [len(v) for v in views])


class FaceEmbedder(OnnxRecogniser):
    """FaceNet-128d, converted at install (``models/convert.py``)."""

    def __init__(self, networks: Path, max_batch: int = 32) -> None:
        super().__init__(networks / FACENET_FILE, MODEL_NAME, DIMENSION, max_batch)

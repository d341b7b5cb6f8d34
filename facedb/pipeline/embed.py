"""FaceNet-128d embeddings through deepface's TensorFlow model, many faces per call."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from facedb.pipeline.lazy import LazyModel

MODEL_NAME = "Facenet"
MODEL_VERSION = "facenet-128d/keras-facenet-6acdd8fb/normalization=Facenet"
DIMENSION = 128
INPUT_SIZE = (160, 160)


class FaceEmbedder(LazyModel):
    """FaceNet; ``embed`` runs one model call per ``max_batch`` faces."""

    name = MODEL_NAME
    version = MODEL_VERSION
    dimension = DIMENSION

    def __init__(self, max_batch: int = 32) -> None:
        super().__init__()
        self.max_batch = max_batch

    def _build(self) -> Any:
        from deepface.modules import modeling

        return modeling.build_model(task="facial_recognition", model_name=MODEL_NAME)

    def embed(self, inputs: list[NDArray[np.float32]]) -> NDArray[np.float32]:
        """Return float32 (n, 128) L2-normalised embeddings of ``model_input`` arrays."""
        if not inputs:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        batch = np.concatenate(inputs, axis=0)
        outputs = []
        with self.using() as client:
            for start in range(0, len(batch), self.max_batch):
                part = batch[start : start + self.max_batch]
                outputs.append(np.asarray(client.model(part, training=False)))
        vectors = np.concatenate(outputs, axis=0).astype(np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


def model_input(chip_bgr: NDArray[np.uint8]) -> NDArray[np.float32]:
    """Return the (1, 160, 160, 3) model input, prepared exactly as deepface.represent does."""
    from deepface.modules import preprocessing

    scaled = chip_bgr.astype(np.float32) / 255.0
    resized = preprocessing.resize_image(img=scaled, target_size=INPUT_SIZE)
    return np.asarray(preprocessing.normalize_input(img=resized, normalization="Facenet"))

"""FaceNet-128d embeddings through deepface's TensorFlow model, many faces per call."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from numpy.typing import NDArray

MODEL_NAME = "Facenet"
MODEL_VERSION = "facenet-128d/keras-facenet-6acdd8fb/normalization=Facenet"
DIMENSION = 128
_INPUT_SIZE = (160, 160)


class FaceEmbedder:
    """Lazily built FaceNet; ``embed`` runs one model call for a whole batch of faces."""

    name = MODEL_NAME
    version = MODEL_VERSION
    dimension = DIMENSION

    def __init__(self, max_batch: int = 32) -> None:
        self.max_batch = max_batch
        self._client: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Build the model if it is not built yet (thread-safe)."""
        with self._lock:
            self._load_locked()

    def _load_locked(self) -> None:
        if self._client is None:
            from deepface.modules import modeling

            self._client = modeling.build_model(task="facial_recognition", model_name=MODEL_NAME)

    @property
    def loaded(self) -> bool:
        return self._client is not None

    def embed(self, chips_bgr: list[NDArray[np.uint8]]) -> NDArray[np.float32]:
        """Return float32 (n, 128) L2-normalised embeddings of BGR uint8 face chips."""
        if not chips_bgr:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        batch = np.concatenate([_preprocess(chip) for chip in chips_bgr], axis=0)
        outputs = []
        with self._lock:
            self._load_locked()
            for start in range(0, len(batch), self.max_batch):
                part = batch[start : start + self.max_batch]
                outputs.append(np.asarray(self._client.model(part, training=False)))
        vectors = np.concatenate(outputs, axis=0).astype(np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


def _preprocess(chip_bgr: NDArray[np.uint8]) -> NDArray[np.float32]:
    """Return the (1, 160, 160, 3) model input, prepared exactly as deepface.represent does."""
    from deepface.modules import preprocessing

    scaled = chip_bgr.astype(np.float32) / 255.0
    resized = preprocessing.resize_image(img=scaled, target_size=_INPUT_SIZE)
    return np.asarray(preprocessing.normalize_input(img=resized, normalization="Facenet"))

"""The TensorFlow path FaceDB served on before ONNX Runtime, kept as the benchmarks' baseline.

MTCNN through deepface (the `mtcnn` package on TensorFlow) and deepface's Keras FaceNet
called eagerly, with the same recipe, age/gender model, caps and store as the current path,
so old and new are measured in the same run on the same photos.

Run a server on it (settings from the environment, as `facedb serve`):
    .venv/bin/python -m bench.tensorflow_path
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from facedb.config import Settings
from facedb.domain import NetworkName
from facedb.pipeline.analyzer import FaceAnalyzer
from facedb.pipeline.detect import FaceDetector
from facedb.pipeline.embed import FaceEmbedder


class TensorFlowDetector(FaceDetector):
    """deepface's MTCNN backend (TensorFlow), as served before the ONNX port."""

    def _build(self) -> Any:
        from deepface.modules import modeling

        from facedb.pipeline.deepface_env import configure_deepface

        configure_deepface(self.model_dir)
        return modeling.build_model(task="face_detector", model_name="mtcnn")


class TensorFlowEmbedder(FaceEmbedder):
    """deepface's Keras FaceNet, called eagerly as before the ONNX port."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings.models_path)
        self.model_dir = settings.models_path

    def _build(self) -> Any:
        from deepface.modules import modeling

        from facedb.pipeline.deepface_env import configure_deepface

        configure_deepface(self.model_dir)
        return modeling.build_model(task="facial_recognition", model_name="Facenet")

    def _call(self, model: Any, inputs: NDArray[np.float32]) -> NDArray[np.float32]:
        """The Keras model called eagerly (batching and view averaging are FaceEmbedder's)."""
        return np.asarray(model.model(inputs, training=False))


def tensorflow_analyzer(settings: Settings) -> FaceAnalyzer:
    """Return the current analyzer with detection and embedding on the old TensorFlow path."""
    analyzer = FaceAnalyzer(settings)
    analyzer.detector = TensorFlowDetector(
        "mtcnn", settings.detect_max_side, settings.models_path, settings.models_path
    )
    analyzer.embedder = TensorFlowEmbedder(settings)
    analyzer.networks[NetworkName.FACENET] = analyzer.embedder
    return analyzer


def serve() -> None:
    """Serve the HTTP API on the TensorFlow path (what `facedb serve` did before ONNX)."""
    import uvicorn

    from api.app import create_app, uvicorn_config
    from facedb.config import get_settings
    from facedb.wiring import build

    settings = get_settings()
    services = build(settings, tensorflow_analyzer(settings))
    uvicorn.Server(uvicorn_config(create_app(settings, services), settings)).run()


if __name__ == "__main__":
    serve()

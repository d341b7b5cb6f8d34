"""OpenCV Zoo's SFace (128-d), a third recogniser trained apart from FaceNet and dlib.

Zhong et al., "SFace: Sigmoid-Constrained Hypersphere Loss for Robust Face Recognition"
(2021), as OpenCV Zoo publishes it (Apache-2.0; installed from PyPI, ``models/install.py``). It
expects ArcFace's 112x112 chip: the eyes placed where ArcFace's template has them (here from
the detector's two eye points: re-embedding works from stored detections;
``chips.sface_chip``), RGB, raw 0-255
(the graph subtracts and scales itself), channels first. The file's graph fixes its batch at
one and lists its weights as inputs; the session is built from a copy that frees both
(``onnx.freed``), so a face's chip and mirror are one call (37 ms on a 2-core CPU, against
40 for two calls as published; embeddings alike to cosine 1.0); the two embeddings are
averaged as FaceNet's are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from facedb.models.catalog import sface_path
from facedb.pipeline import onnx
from facedb.pipeline.embed import OnnxRecogniser

DIMENSION = 128


class SFaceRecogniser(OnnxRecogniser):
    """SFace on ONNX Runtime."""

    def __init__(self, model_dir: Path) -> None:
        super().__init__(sface_path(model_dir), "sface", DIMENSION)

    def _build(self) -> Any:
        return onnx.session(onnx.freed(self.path))

"""TensorFlow → ONNX, once, when the models are installed (never while serving).

FaceNet (deepface's Keras model with the installed weights) and MTCNN's three networks (the
`mtcnn` package's weights) are converted with tf2onnx, then checked against TensorFlow on the
celebrity photos before they are adopted: every FaceNet input (each face's chip and its
mirror, as the current recipe feeds them) must give an embedding within cosine 0.9999 of
TensorFlow's, and the ONNX detector must find the same faces (boxes and eyes within 2 px).
A conversion that fails the check is not installed. What was checked is recorded in
``onnx/manifest.json`` beside the networks, with each file's sha256.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from facedb.errors import ModelInstallError
from facedb.models.catalog import FACENET_FILE, MANIFEST, sha256_file
from facedb.models.tfjs import Graph, graph_def, input_name
from facedb.pipeline import onnx
from facedb.pipeline.chips import facenet_margin_mirror
from facedb.pipeline.decode import NO_CAP, decode_image
from facedb.pipeline.faceres import OUTPUTS, SIDE
from facedb.pipeline.mtcnn import NETWORKS, OnnxMtcnn, network_path
from facedb.pipeline.types import Detection
from facedb.records import Box

log = logging.getLogger(__name__)
OPSET = 17
MIN_COSINE = 0.9999
MAX_PIXELS_APART = 2


def convert(
    model_dir: Path, target: Path, photos: list[Path], source_sha256: str
) -> dict[str, Any]:
    """Convert, check and install the ONNX networks into ``target``; return the manifest.

    Raises ModelInstallError (installing nothing) when a check fails.
    """
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    from facedb.pipeline.deepface_env import configure_deepface

    configure_deepface(model_dir)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".onnx-") as tmp:
        staging = Path(tmp)
        facenet = _convert_facenet(staging / FACENET_FILE)
        detector = _convert_mtcnn(staging)
        checked = _check(staging, facenet, detector, photos)
        manifest = {
            "networks": {p.name: sha256_file(p) for p in sorted(staging.glob("*.onnx"))},
            "facenet_weights_sha256": source_sha256,
            "checked": checked,
            "converter": _versions(),
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(staging, target)
    log.info("ONNX networks installed at %s (checked on %d photos)", target, checked["photos"])
    return manifest


def _convert_facenet(path: Path) -> Any:
    import tensorflow as tf
    import tf2onnx
    from deepface.modules import modeling

    model = modeling.build_model(task="facial_recognition", model_name="Facenet").model
    spec = (tf.TensorSpec((None, 160, 160, 3), tf.float32, name="input"),)
    function = tf.function(lambda x: model(x, training=False))
    tf2onnx.convert.from_function(function, input_signature=spec, opset=OPSET,
                                  output_path=str(path))  # fmt: skip
    return model


def _convert_mtcnn(folder: Path) -> Any:
    import tensorflow as tf
    import tf2onnx
    from deepface.modules import modeling
    from mtcnn.network.onet import ONet
    from mtcnn.network.pnet import PNet
    from mtcnn.network.rnet import RNet
    from mtcnn.utils.tensorflow import load_weights

    shapes = {"pnet": (None, None, None, 3), "rnet": (None, 24, 24, 3), "onet": (None, 48, 48, 3)}
    for name, network in zip(NETWORKS, (PNet, RNet, ONet), strict=True):
        model = network()
        model.build()
        model.set_weights(load_weights(f"{name}.lz4"))
        spec = (tf.TensorSpec(shapes[name], tf.float32, name="input"),)
        function = tf.function(lambda x, m=model: m(x))
        tf2onnx.convert.from_function(function, input_signature=spec, opset=OPSET,
                                      output_path=str(network_path(folder, name)))  # fmt: skip
    return modeling.build_model(task="face_detector", model_name="mtcnn")


def _check(folder: Path, facenet: Any, detector: Any, photos: list[Path]) -> dict[str, Any]:
    """Compare the ONNX networks with TensorFlow's on ``photos``; raise when they differ."""
    ours, embedder = OnnxMtcnn(folder), onnx.session(folder / FACENET_FILE)
    min_cosine, faces, far = 1.0, 0, 0
    for path in photos:
        bgr = decode_image(path.read_bytes(), NO_CAP, NO_CAP).bgr
        theirs, mine = detector.detect_faces(bgr), ours.detect_faces(bgr)
        if len(theirs) != len(mine):
            raise ModelInstallError(f"the ONNX detector found {len(mine)} faces in {path.name}, "
                                    f"TensorFlow's {len(theirs)}: not installed")  # fmt: skip
        for a, b in zip(theirs, mine, strict=True):
            apart = max(abs(a.x - b.x), abs(a.y - b.y), abs(a.w - b.w), abs(a.h - b.h),
                        *np.abs(np.subtract(a.left_eye, b.left_eye)),
                        *np.abs(np.subtract(a.right_eye, b.right_eye)))  # fmt: skip
            far = max(far, int(apart))
            detection = Detection(Box(b.x, b.y, b.w, b.h), b.confidence, b.left_eye, b.right_eye)
            views = facenet_margin_mirror(bgr, detection, {})
            expected = np.asarray(facenet(views, training=False))
            got = onnx.run(embedder, views)[0]
            cosine = (expected * got).sum(1) / (
                np.linalg.norm(expected, axis=1) * np.linalg.norm(got, axis=1)
            )
            min_cosine, faces = min(min_cosine, float(cosine.min())), faces + 1
    if far > MAX_PIXELS_APART:
        raise ModelInstallError(f"the ONNX detector's faces lie {far} px from TensorFlow's")
    if min_cosine < MIN_COSINE:
        raise ModelInstallError(f"ONNX FaceNet agrees with TensorFlow only to cosine {min_cosine}")
    return {"photos": len(photos), "faces": faces, "min_cosine": round(min_cosine, 7),
            "max_pixels_apart": far}  # fmt: skip


def _versions() -> dict[str, str]:
    import onnxruntime
    import tensorflow
    import tf2onnx

    return {"tf2onnx": tf2onnx.__version__, "tensorflow": tensorflow.__version__,
            "onnxruntime": onnxruntime.__version__, "opset": str(OPSET)}  # fmt: skip


# --- FaceRes's age and gender heads (a TensorFlow.js graph from the npm registry) ---------
FACERES_MAX_APART = 1e-4  # largest difference of one probability, ONNX against TF


def convert_faceres(model_json: Path, target: Path) -> dict[str, Any]:
    """Convert FaceRes's age and gender heads to one ONNX network at ``target`` and check
    it against TensorFlow on seeded random chips; return what was checked. Raises
    ModelInstallError (writing nothing) when the two disagree."""
    import tf2onnx

    graph = graph_def(model_json)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".faceres-") as tmp:
        staging = Path(tmp) / target.name
        tf2onnx.convert.from_graph_def(graph, input_names=[input_name(graph)],
                                       output_names=list(OUTPUTS), opset=OPSET,
                                       output_path=str(staging))  # fmt: skip
        noise = np.random.default_rng(0).uniform(-124.0, 152.0, (4, SIDE, SIDE, 3))
        chips = np.asarray(noise, np.float32)
        expected = Graph(model_json, list(OUTPUTS))(chips)
        got = onnx.run(onnx.session(staging), chips)
        apart = max(float(np.abs(e - g).max()) for e, g in zip(expected, got, strict=True))
        if apart > FACERES_MAX_APART:
            raise ModelInstallError(f"ONNX FaceRes differs from TensorFlow by {apart}")
        staging.replace(target)
    return {"inputs": len(chips), "max_probability_apart": apart, "converter": _versions()}

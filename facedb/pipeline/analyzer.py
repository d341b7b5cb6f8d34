"""The whole pipeline: photo bytes → faces with embedding, age and gender."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from facedb.config import Settings
from facedb.errors import ImageError
from facedb.pipeline.align import aligned_chip
from facedb.pipeline.attributes import AgeGender, AgeGenderEstimator
from facedb.pipeline.decode import decode_image
from facedb.pipeline.deepface_env import configure_deepface
from facedb.pipeline.detect import FaceDetector
from facedb.pipeline.embed import FaceEmbedder
from facedb.pipeline.types import Detection, Face
from facedb.provision import age_gender_dir, require_models


@dataclass
class _Located:
    """A photo after detection and alignment, before the (batched) embedding."""

    rgb: NDArray[np.uint8]
    detections: list[Detection]
    chips_bgr: list[NDArray[np.uint8]]
    attributes: list[AgeGender | None]


class FaceAnalyzer:
    """Holds the three models, each built once per process, lazily and thread-safely."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.detector = FaceDetector(settings.detector, settings.detect_max_side)
        self.embedder = FaceEmbedder()
        self.attributes = AgeGenderEstimator(age_gender_dir(settings.models_path))
        self._checked = False
        self._check_lock = threading.Lock()

    @property
    def model_name(self) -> str:
        return self.embedder.name

    @property
    def model_version(self) -> str:
        return self.embedder.version

    def ensure_models(self) -> None:
        """Raise ModelsMissing (naming `facedb models install`) unless every file is there."""
        with self._check_lock:
            if not self._checked:
                require_models(self.settings.models_path, self.settings.detector)
                configure_deepface(self.settings.models_path)
                self._checked = True

    def load(self) -> None:
        """Load every model now (start-up), instead of on the first photo."""
        self.ensure_models()
        self.detector.load()
        self.embedder.load()
        self.attributes.load()

    def loaded(self) -> dict[str, bool]:
        return {
            "detector": self.detector.loaded,
            "embedder": self.embedder.loaded,
            "age_gender": self.attributes.loaded,
        }

    def analyze(self, data: bytes) -> list[Face]:
        """Return every face in one photo. Raises an ImageError for a bad photo."""
        result = self.analyze_many([data])[0]
        if isinstance(result, ImageError):
            raise result
        return result

    def analyze_many(self, photos: list[bytes]) -> list[list[Face] | ImageError]:
        """Analyse several photos; all their faces are embedded in one batched model call.

        Each entry is that photo's faces, or the ImageError that refused it.
        """
        self.ensure_models()
        located: list[_Located | ImageError] = []
        for data in photos:
            try:
                located.append(self._locate(data))
            except ImageError as exc:
                located.append(exc)
        chips = [chip for item in located if isinstance(item, _Located) for chip in item.chips_bgr]
        vectors = self.embedder.embed(chips)
        results: list[list[Face] | ImageError] = []
        offset = 0
        for item in located:
            if isinstance(item, ImageError):
                results.append(item)
                continue
            faces = []
            for detection, chip, attrs in zip(
                item.detections, item.chips_bgr, item.attributes, strict=True
            ):
                faces.append(
                    Face(
                        detection=detection,
                        embedding=vectors[offset],
                        age=attrs.age if attrs else None,
                        gender=attrs.gender if attrs else None,
                        gender_probability=attrs.gender_probability if attrs else None,
                        chip=np.ascontiguousarray(chip[:, :, ::-1]),
                    )
                )
                offset += 1
            results.append(faces)
        return results

    def _locate(self, data: bytes) -> _Located:
        decoded = decode_image(data, self.settings.max_image_bytes, self.settings.max_image_pixels)
        rgb = decoded.rgb
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        detections = [
            d
            for d in self.detector.detect(bgr)
            if d.confidence >= self.settings.min_confidence
            and min(d.box.w, d.box.h) >= self.settings.min_face_size
        ]
        detections.sort(key=lambda d: (d.box.y, d.box.x))
        chips = [aligned_chip(bgr, d) for d in detections]
        attributes = self.attributes.estimate(rgb, [d.box for d in detections])
        return _Located(rgb, detections, chips, attributes)

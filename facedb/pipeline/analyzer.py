"""The whole pipeline: photo bytes → faces with embedding, age and gender.

Memory: a decoded photo holds width x height x 3 bytes (147 MB at 7000x7000). Photos are
decoded one at a time per caller and released before the next; what is kept per face is
small (the 160x160 model input and a display thumbnail). ``inference_threads`` bounds how
many photos the whole process decodes and analyses at once.
"""

from __future__ import annotations

import threading

import numpy as np
from numpy.typing import NDArray

from facedb.config import Settings
from facedb.errors import ImageError, UnknownModelVersion
from facedb.pipeline.attributes import AgeGenderEstimator
from facedb.pipeline.base import LocatedFace
from facedb.pipeline.decode import decode_image
from facedb.pipeline.detect import FaceDetector
from facedb.pipeline.embed import FaceEmbedder
from facedb.pipeline.memory import return_large_buffers
from facedb.pipeline.recipes import CURRENT, RECIPES, Recipe, display_crop
from facedb.pipeline.types import Detection, Face
from facedb.provision import age_gender_dir, onnx_dir, require_models

THUMBNAIL_SIDE = 160
# Stored photos were admitted under the caps in force then; re-embedding decodes them as-is.
_NO_CAP = 1 << 62


class FaceAnalyzer:
    """The real pipeline (an ``Analyzer``): holds the three models, each built once per
    process, lazily and thread-safely.

    ``recipe`` is how faces are fed to FaceNet; it names the model version of the
    embeddings made. It is the current recipe unless the database's embeddings were made
    by an older one: then the service embeds with that one (``use``) until a re-embed.
    """

    def __init__(self, settings: Settings) -> None:
        return_large_buffers()  # process-wide and idempotent: decoded photos are large
        self.settings = settings
        networks = onnx_dir(settings.models_path)
        self.detector = FaceDetector(
            settings.detector, settings.detect_max_side, networks, settings.models_path
        )
        self.embedder = FaceEmbedder(networks)
        self.attributes = AgeGenderEstimator(age_gender_dir(settings.models_path))
        self._checked = False
        self._check_lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(settings.inference_threads)
        self.recipe: Recipe = CURRENT
        self.model_name = self.embedder.name
        self.dimension = self.embedder.dimension

    @property
    def model_version(self) -> str:
        return self.recipe.version

    def use(self, model_version: str) -> None:
        """Embed with the recipe of ``model_version`` from now on (UnknownModelVersion if none)."""
        self.recipe = recipe_of(model_version)

    def ensure_models(self) -> None:
        """Raise ModelsMissing (naming `facedb models install`) unless every file is there."""
        with self._check_lock:
            if not self._checked:
                require_models(self.settings.models_path, self.settings.detector)
                self._checked = True

    def load(self) -> None:
        """Load every model now (start-up), instead of on the first photo."""
        self.ensure_models()
        for model in (self.detector, self.embedder, self.attributes):
            model.load()

    def loaded(self) -> dict[str, bool]:
        return {
            "detector": self.detector.loaded,
            "embedder": self.embedder.loaded,
            "age_gender": self.attributes.loaded,
        }

    # --- photos -------------------------------------------------------------------------
    def analyze(self, data: bytes) -> list[Face]:
        """Return every face in one photo. Raises an ImageError for a bad photo."""
        return self.embed(self.locate(data))

    def analyze_many(self, photos: list[bytes]) -> list[list[Face] | ImageError]:
        """Analyse several photos, one decoded at a time; all faces embedded in one call.

        Each entry is that photo's faces, or the ImageError that refused it.
        """
        located: list[list[LocatedFace] | ImageError] = []
        for data in photos:
            try:
                located.append(self.locate(data))
            except ImageError as exc:
                located.append(exc)
        faces = self.embed(
            [f for item in located if not isinstance(item, ImageError) for f in item]
        )
        results: list[list[Face] | ImageError] = []
        for item in located:
            if isinstance(item, ImageError):
                results.append(item)
            else:
                results.append(faces[: len(item)])
                faces = faces[len(item) :]
        return results

    def locate(self, data: bytes) -> list[LocatedFace]:
        """Decode, detect, align and estimate age/gender; the decoded photo is then released."""
        self.ensure_models()
        with self._slots:
            s = self.settings
            bgr = decode_image(data, s.max_image_bytes, s.max_image_pixels).bgr
            detections = [
                d
                for d in self.detector.detect(bgr)
                if d.confidence >= self.settings.min_confidence
                and min(d.box.w, d.box.h) >= self.settings.min_face_size
            ]
            detections.sort(key=lambda d: (d.box.y, d.box.x))
            attributes = self.attributes.estimate(bgr, [d.box for d in detections])
            recipe = self.recipe
            located = [
                LocatedFace(
                    detection,
                    recipe.views(bgr, detection),
                    recipe.version,
                    attrs,
                    display_crop(bgr, detection, THUMBNAIL_SIDE),
                )
                for detection, attrs in zip(detections, attributes, strict=True)
            ]
            del bgr
        return located

    def embed(self, located: list[LocatedFace]) -> list[Face]:
        """Return the faces with their embeddings, computed in one batched model call."""
        self.ensure_models()
        vectors = self.embedder.embed([f.views for f in located])
        return [
            Face(
                detection=f.detection,
                embedding=vector,
                model_version=f.model_version,
                age=f.attributes.age if f.attributes else None,
                gender=(
                    f.attributes.answered(self.settings.gender_min_probability)
                    if f.attributes
                    else None
                ),
                gender_probability=f.attributes.gender_probability if f.attributes else None,
                chip=f.thumbnail,
            )
            for f, vector in zip(located, vectors, strict=True)
        ]

    def embed_stored(
        self, data: bytes, detections: list[Detection], recipe: Recipe = CURRENT
    ) -> NDArray[np.float32]:
        """Return embeddings of known faces of a stored photo (re-embedding), (n, 128)."""
        self.ensure_models()
        with self._slots:
            bgr = decode_image(data, _NO_CAP, _NO_CAP).bgr
            views = [recipe.views(bgr, d) for d in detections]
            del bgr
        return self.embedder.embed(views)


def recipe_of(model_version: str) -> Recipe:
    """Return the recipe that made embeddings of ``model_version``."""
    try:
        return RECIPES[model_version]
    except KeyError:
        raise UnknownModelVersion(
            f"the database's embeddings were made by model version {model_version!r}, "
            f"which this FaceDB cannot make (it knows {', '.join(sorted(RECIPES))}). "
            "Run the FaceDB release that made them, or `facedb reindex --re-embed`."
        ) from None

"""The real pipeline: photo bytes → faces with embedding, age and gender.

Memory: a decoded photo holds width x height x 3 bytes (147 MB at 7000x7000). Photos are
decoded one at a time per caller and released before the next; what is kept per face is
small (the 160x160 model input and a display thumbnail).
"""

from __future__ import annotations

import threading

from facedb.config import Settings
from facedb.domain import NetworkName
from facedb.models.cards import Installed, installed
from facedb.models.catalog import age_gender_dir, dlib_dir, faceres_path, onnx_dir
from facedb.models.status import require_models
from facedb.pipeline.attributes import AgeGenderEstimator
from facedb.pipeline.base import PipelineAnalyzer
from facedb.pipeline.detect import FaceDetector
from facedb.pipeline.dlib_resnet import DlibDescriptor
from facedb.pipeline.embed import FaceEmbedder, OnnxRecogniser
from facedb.pipeline.memory import return_large_buffers
from facedb.pipeline.recipes import RecipeBook
from facedb.pipeline.sface import SFaceRecogniser


class FaceAnalyzer(PipelineAnalyzer):
    """The real networks behind ``PipelineAnalyzer``: each built once per process, lazily (a
    recognition network only when a recipe in use needs it) and thread-safely."""

    detector: FaceDetector
    attributes: AgeGenderEstimator

    def __init__(self, settings: Settings, recipes: RecipeBook | None = None) -> None:
        return_large_buffers()  # process-wide and idempotent: decoded photos are large
        models = settings.models_path
        self.embedder = FaceEmbedder(onnx_dir(models))
        recipes = recipes if recipes is not None else RecipeBook()
        found = installed(models)
        recipes.add_installed(found)  # FACEDB_RECIPE may name one
        super().__init__(
            settings,
            recipes,
            detector=FaceDetector(
                settings.detector, settings.detect_max_side, onnx_dir(models), models
            ),
            attributes=AgeGenderEstimator(age_gender_dir(models), faceres_path(models)),
            networks={
                NetworkName.FACENET: self.embedder,
                NetworkName.DLIB: DlibDescriptor(dlib_dir(models)),
                NetworkName.SFACE: SFaceRecogniser(models),
            },
        )
        self._add_networks(found)
        self._checked = False
        self._check_lock = threading.Lock()
        self.model_name = self.embedder.name

    def add_installed(self) -> None:
        """Know the recognisers `facedb models add` installed: their recipes and networks."""
        found = installed(self.settings.models_path)
        self.recipes.add_installed(found)
        self._add_networks(found)

    def _add_networks(self, found: list[Installed]) -> None:
        for item in found:
            card = item.card
            if card.name not in self.networks:
                self.networks[card.name] = OnnxRecogniser(item.model, card.name, card.dimension)

    def ensure_models(self) -> None:
        """Raise ModelsMissing (naming `facedb models install`) unless every file is there."""
        with self._check_lock:
            if not self._checked:
                require_models(self.settings.models_path, self.settings.detector)
                self._checked = True

"""The whole pipeline: photo bytes → faces with embedding, age and gender.

Memory: a decoded photo holds width x height x 3 bytes (147 MB at 7000x7000). Photos are
decoded one at a time per caller and released before the next; what is kept per face is
small (the 160x160 model input and a display thumbnail). ``inference_threads`` bounds how
many photos the whole process decodes and analyses at once.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
from numpy.typing import NDArray

from facedb.config import Settings
from facedb.domain import NetworkName
from facedb.errors import ImageError
from facedb.pipeline.age_axis import AxisRemovedRecipe, join_parts
from facedb.pipeline.attributes import AgeGenderEstimator
from facedb.pipeline.base import LocatedFace
from facedb.pipeline.cards import register_installed
from facedb.pipeline.decode import NO_CAP, decode_image
from facedb.pipeline.detect import FaceDetector
from facedb.pipeline.dlib_resnet import DlibDescriptor
from facedb.pipeline.embed import FaceEmbedder, OnnxRecogniser
from facedb.pipeline.memory import return_large_buffers
from facedb.pipeline.recipes import (
    RECIPES,
    Network,
    Networks,
    Recipe,
    Views,
    chosen_recipe,
    display_crop,
    recipe_of,
)
from facedb.pipeline.sface import SFaceRecogniser
from facedb.pipeline.types import Detection, Face
from facedb.provision import age_gender_dir, dlib_dir, faceres_path, onnx_dir, require_models

THUMBNAIL_SIDE = 160


class FaceAnalyzer:
    """The real pipeline (an ``Analyzer``): holds the models, each built once per process,
    lazily (a recognition network only when a recipe in use needs it) and thread-safely.

    ``recipe`` is which networks faces are fed to, and how; it names the model version of
    the embeddings made. It is the chosen recipe (``target``, FACEDB_RECIPE) unless the
    database's embeddings were made by another: then the service embeds with that one
    (``use``) until a re-embed.
    """

    def __init__(self, settings: Settings) -> None:
        return_large_buffers()  # process-wide and idempotent: decoded photos are large
        self.settings = settings
        networks = onnx_dir(settings.models_path)
        self.detector = FaceDetector(
            settings.detector, settings.detect_max_side, networks, settings.models_path
        )
        self.embedder = FaceEmbedder(networks)
        self.networks: Networks = {
            NetworkName.FACENET: self.embedder,
            NetworkName.DLIB: DlibDescriptor(dlib_dir(settings.models_path)),
            NetworkName.SFACE: SFaceRecogniser(settings.models_path),
        }
        self._add_installed()
        self.attributes = AgeGenderEstimator(
            age_gender_dir(settings.models_path), faceres_path(settings.models_path)
        )
        self._checked = False
        self._check_lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(settings.inference_threads)
        self._beside = ThreadPoolExecutor(thread_name_prefix="facedb-network")
        self.target: Recipe = chosen_recipe(settings.recipe)
        self.recipe: Recipe = self.target
        self.model_name = self.embedder.name

    @property
    def model_version(self) -> str:
        return self.recipe.version

    @property
    def target_version(self) -> str:
        return self.target.version

    @property
    def dimension(self) -> int:
        return self.recipe.dimension

    def use(self, model_version: str) -> None:
        """Embed with the recipe of ``model_version`` from now on (UnknownModelVersion if none).

        A version this process does not know may be a recogniser installed since it started
        (another process re-embedded to it): the installed ones are read again first.
        """
        known = RECIPES.get(model_version)
        if known is None or any(name not in self.networks for name, _ in known.parts):
            self._add_installed()
        self.recipe = recipe_of(model_version)

    def _add_installed(self) -> None:
        """Know the recognisers `facedb models add` installed: their recipes and networks."""
        for item in register_installed(self.settings.models_path):
            card = item.card
            if card.name not in self.networks:
                self.networks[card.name] = OnnxRecogniser(item.model, card.name, card.dimension)

    def ensure_models(self) -> None:
        """Raise ModelsMissing (naming `facedb models install`) unless every file is there."""
        with self._check_lock:
            if not self._checked:
                require_models(self.settings.models_path, self.settings.detector)
                self._checked = True

    def load(self) -> None:
        """Load every model now (start-up), instead of on the first photo."""
        self.ensure_models()
        self.detector.load()
        for network in self._networks_of(self.recipe):
            network.load()
        self.attributes.load()

    def _networks_of(self, recipe: Recipe) -> list[Network]:
        return [self.networks[name] for name, _ in recipe.parts]

    def loaded(self) -> dict[str, bool]:
        return {
            "detector": self.detector.loaded,
            "embedder": all(n.loaded for n in self._networks_of(self.recipe)),
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
            attributes = self.attributes.estimate(bgr, detections)
            recipe = self.recipe
            located = [
                LocatedFace(
                    detection,
                    recipe.views(bgr, detection, self.networks),
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
        vectors: list[NDArray[np.float32]] = [np.zeros(0, np.float32)] * len(located)
        for version in {f.model_version for f in located}:  # one, unless a re-embed switched
            rows = [i for i, f in enumerate(located) if f.model_version == version]
            made = self.embed_views(recipe_of(version), [located[i].views for i in rows])
            for row, vector in zip(rows, made, strict=True):
                vectors[row] = vector
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

    def embed_views(self, recipe: Recipe, views: list[Views]) -> NDArray[np.float32]:
        """Return the recipe's (n, dimension) embeddings of faces' views, each part's
        network called once for all of them."""
        inputs = [
            (self.networks[name], [v[i] for v in views]) for i, (name, _) in enumerate(recipe.parts)
        ]
        parts = self._side_by_side(inputs)
        if isinstance(recipe, AxisRemovedRecipe):
            parts = recipe.axis.remove(parts)
        return join_parts(parts, recipe)

    def _side_by_side(
        self, inputs: list[tuple[Network, list[NDArray[Any]]]]
    ) -> list[NDArray[np.float32]]:
        """Run each network on its inputs, those that release the GIL in helper threads.

        The helpers are started, and have entered their network, before this thread runs
        the networks that keep the GIL (dlib's descriptor): on a 2-core CPU the ONNX
        networks then compute beside dlib rather than after it (bench/RESULTS.md, "Search
        latency per recipe").
        """
        if len(inputs) == 1:
            network, views = inputs[0]
            return [network.embed(views)]
        started: list[threading.Event] = []
        helpers: dict[int, Future[NDArray[np.float32]]] = {}
        for k, (network, views) in enumerate(inputs):
            if network.releases_gil:
                started.append(threading.Event())
                helpers[k] = self._beside.submit(_signalled, started[-1], network, views)
        for event in started:
            event.wait()
        here = {k: n.embed(v) for k, (n, v) in enumerate(inputs) if k not in helpers}
        return [helpers[k].result() if k in helpers else here[k] for k in range(len(inputs))]

    def embed_stored(
        self, data: bytes, detections: list[Detection], recipe: Recipe | None = None
    ) -> NDArray[np.float32]:
        """Return embeddings of known faces of a stored photo (re-embedding) with
        ``recipe`` (the chosen one by default), (n, dimension)."""
        self.ensure_models()
        recipe = recipe or self.target
        with self._slots:
            bgr = decode_image(data, NO_CAP, NO_CAP).bgr
            views = [recipe.views(bgr, d, self.networks) for d in detections]
            del bgr
        return self.embed_views(recipe, views)


def _signalled(
    event: threading.Event, network: Network, views: list[NDArray[Any]]
) -> NDArray[np.float32]:
    """Say that the helper has started, then run the network (see ``_side_by_side``)."""
    event.set()
    return network.embed(views)

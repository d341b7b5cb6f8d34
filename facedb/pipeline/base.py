"""What the services need of the face pipeline, and the one body that runs it, whichever
networks (or fakes) it is given.

``PipelineAnalyzer`` holds the work: decode, detect, estimate age and gender, cut each
part's chips, run the networks (all faces of a batch in one call each), fuse, group by
model version. ``FaceAnalyzer`` (``analyzer.py``) gives it the real detector, networks and
age/gender estimator; the tests' stand-in gives it fakes of those and nothing else.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from facedb.config import Settings
from facedb.errors import ImageError
from facedb.pipeline.attributes import AgeGender
from facedb.pipeline.chips import display_crop
from facedb.pipeline.decode import NO_CAP, decode_image
from facedb.pipeline.quality import Quality, assess
from facedb.pipeline.recipes import Recipe, RecipeBook
from facedb.pipeline.types import Detection, Face, Network, Networks, Views

THUMBNAIL_SIDE = 160


@dataclass
class LocatedFace:
    """A face after detection and alignment, before the (batched) embedding."""

    detection: Detection
    views: Views  # the recipe's model inputs: per part, (v, ...) views averaged
    model_version: str  # the recipe that made them
    attributes: AgeGender | None
    thumbnail: NDArray[np.uint8]  # RGB, square, for display
    quality: Quality


class Analyzer(Protocol):
    """Photo bytes → faces with embeddings, ages and genders."""

    @property
    def recipes(self) -> RecipeBook:
        """The recipes this process knows (one book, built once)."""
        ...

    @property
    def model_name(self) -> str:
        """The embedding network (stored beside every embedding)."""
        ...

    @property
    def model_version(self) -> str:
        """The recipe new embeddings are made with."""
        ...

    @property
    def target_version(self) -> str:
        """The chosen recipe (FACEDB_RECIPE): what an empty database takes and a re-embed
        moves to."""
        ...

    @property
    def dimension(self) -> int:
        """The length of its embeddings."""
        ...

    def use(self, model_version: str) -> None:
        """Embed with the recipe of ``model_version`` from now on (the index says which)."""
        ...

    def load(self) -> None:
        """Load every model now (start-up) rather than on the first photo."""
        ...

    def loaded(self) -> dict[str, bool]:
        """Which models are loaded (for health)."""
        ...

    def locate(self, data: bytes) -> list[LocatedFace]:
        """Decode, detect, align and estimate age and gender; raises an ImageError."""
        ...

    def embed(self, located: list[LocatedFace]) -> list[Face]:
        """Return the faces with their embeddings, computed in one batched call."""
        ...

    def analyze(self, data: bytes) -> list[Face]:
        """Return every face in one photo (``embed(locate(data))``)."""
        ...

    def analyze_many(self, photos: list[bytes]) -> list[list[Face] | ImageError]:
        """Analyse several photos; each entry is its faces or the error that refused it."""
        ...

    def embed_stored(self, data: bytes, detections: list[Detection]) -> NDArray[np.float32]:
        """Return the embeddings (n, d) of known faces of a stored photo with the current
        recipe (a re-embed)."""
        ...

    def quality_of_stored(
        self, data: bytes, detections: list[Detection], ages: list[float | None]
    ) -> list[Quality]:
        """Return the quality of known faces of a stored photo (faces stored before it was
        measured; without the detector's nose, head pose is left out)."""
        ...


class Detector(Protocol):
    def detect(self, bgr: NDArray[np.uint8]) -> list[Detection]: ...

    def load(self) -> None: ...

    @property
    def loaded(self) -> bool: ...


class Estimator(Protocol):
    def estimate(
        self, bgr: NDArray[np.uint8], detections: list[Detection]
    ) -> list[AgeGender | None]: ...

    def load(self) -> None: ...

    @property
    def loaded(self) -> bool: ...


# The photo (BGR), a face and its estimated age → its quality.
Assess = Callable[[NDArray[np.uint8], Detection, float | None], Quality]


class PipelineAnalyzer:
    """An ``Analyzer`` made of a detector, an age/gender estimator and networks.

    ``recipe`` is which networks faces are fed to, and how; it names the model version of
    the embeddings made. It is the chosen recipe (``target``, FACEDB_RECIPE) unless the
    database's embeddings were made by another: then the service embeds with that one
    (``use``) until a re-embed. ``inference_threads`` bounds how many photos the whole
    process decodes and analyses at once.
    """

    model_name: str

    def __init__(
        self,
        settings: Settings,
        recipes: RecipeBook,
        detector: Detector,
        attributes: Estimator,
        networks: Networks,
        assess: Assess = assess,
    ) -> None:
        self.settings = settings
        self.recipes = recipes
        self.detector = detector
        self.attributes = attributes
        self.networks = networks
        self.assess = assess
        self._slots = threading.BoundedSemaphore(settings.inference_threads)
        self._beside = ThreadPoolExecutor(thread_name_prefix="facedb-network")
        self.target: Recipe = recipes.chosen(settings.recipe)
        self.recipe: Recipe = self.target

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
        if not self.recipes.knows(model_version) or any(
            name not in self.networks for name in self.recipes.of(model_version).networks
        ):
            self.add_installed()
        self.recipe = self.recipes.of(model_version)

    def add_installed(self) -> None:
        """Know the recognisers installed since (none here)."""

    def ensure_models(self) -> None:
        """Raise ModelsMissing unless every model file is there (nothing to check here)."""

    def load(self) -> None:
        """Load every model now (start-up), instead of on the first photo."""
        self.ensure_models()
        self.detector.load()
        for name in self.recipe.networks:
            self.networks[name].load()
        self.attributes.load()

    def loaded(self) -> dict[str, bool]:
        return {
            "detector": self.detector.loaded,
            "embedder": all(self.networks[n].loaded for n in self.recipe.networks),
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
                if d.confidence >= s.min_confidence and min(d.box.w, d.box.h) >= s.min_face_size
            ]
            detections.sort(key=lambda d: (d.box.y, d.box.x))
            attributes = self.attributes.estimate(bgr, detections)
            recipe = self.recipe
            located = [
                LocatedFace(
                    detection,
                    self.views(recipe, bgr, detection),
                    recipe.version,
                    attrs,
                    display_crop(bgr, detection, THUMBNAIL_SIDE),
                    self.assess(bgr, detection, attrs.age if attrs else None),
                )
                for detection, attrs in zip(detections, attributes, strict=True)
            ]
            del bgr
        return located

    def views(self, recipe: Recipe, bgr: NDArray[np.uint8], detection: Detection) -> Views:
        """Return the recipe's inputs for one face."""
        return recipe.views(bgr, detection, self.networks)

    def embed(self, located: list[LocatedFace]) -> list[Face]:
        """Return the faces with their embeddings, computed in one batched model call."""
        self.ensure_models()
        vectors: list[NDArray[np.float32]] = [np.zeros(0, np.float32)] * len(located)
        for version in {f.model_version for f in located}:  # one, unless a re-embed switched
            rows = [i for i, f in enumerate(located) if f.model_version == version]
            made = self.embed_views(self.recipes.of(version), [located[i].views for i in rows])
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
                quality=f.quality,
            )
            for f, vector in zip(located, vectors, strict=True)
        ]

    def embed_views(self, recipe: Recipe, views: list[Views]) -> NDArray[np.float32]:
        """Return the recipe's (n, dimension) embeddings of faces' views, each part's
        network called once for all of them."""
        inputs = [(self.networks[name], [v[i] for v in views])
                  for i, name in enumerate(recipe.networks)]  # fmt: skip
        return recipe.joined(self._side_by_side(inputs))

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

    def quality_of_stored(
        self, data: bytes, detections: list[Detection], ages: list[float | None]
    ) -> list[Quality]:
        """Return the quality of known faces of a stored photo (no head pose: the nose
        is not stored); no network is needed."""
        with self._slots:
            bgr = decode_image(data, NO_CAP, NO_CAP).bgr
            return [self.assess(bgr, d, a) for d, a in zip(detections, ages, strict=True)]

    def embed_stored(
        self, data: bytes, detections: list[Detection], recipe: Recipe | None = None
    ) -> NDArray[np.float32]:
        """Return embeddings of known faces of a stored photo (re-embedding) with
        ``recipe`` (the chosen one by default), (n, dimension)."""
        self.ensure_models()
        recipe = recipe or self.target
        with self._slots:
            bgr = decode_image(data, NO_CAP, NO_CAP).bgr
            views = [self.views(recipe, bgr, d) for d in detections]
            del bgr
        return self.embed_views(recipe, views)


def _signalled(
    event: threading.Event, network: Network, views: list[NDArray[Any]]
) -> NDArray[np.float32]:
    """Say that the helper has started, then run the network (see ``_side_by_side``)."""
    event.set()
    return network.embed(views)

"""How a detected face becomes an embedding: which networks, fed which chips, fused how.

A recipe names the model version its embeddings are stored under. Each of its parts is a
network (``Network``) fed the recipe's chips of the face; a face's embedding is the parts'
unit vectors, each scaled by the square root of its weight, concatenated (weights summing
to 1 make it a unit vector, and the cosine of two such embeddings is the weighted sum of the
parts' cosines: score-level fusion). Recipes:

- ``LegacyRecipe``: deepface's way (a tight box, rotated on the eyes, aspect-padded, fed in BGR).
  Kept so a database made with it keeps serving until ``facedb reindex --re-embed``.
- ``MarginMirrorRecipe``: close to the input the weights were trained on
  (David Sandberg's facenet: the MTCNN box with a margin, resized to 160x160, RGB,
  prewhitened), widened to a square so the face keeps its shape and turned so the eyes
  are level, and embedded with its mirror image, the two embeddings averaged.
- ``FusedRecipe``: that FaceNet embedding beside dlib's ResNet descriptor (its own 5-point
  chip, ``dlib_resnet.py``), equal weights: 256 values.
- ``TripleRecipe`` (the default): those two beside OpenCV Zoo's SFace (ArcFace's 112x112
  chip and its mirror, ``sface.py``), equal weights: 384 values.
- An installed recogniser's ``CardRecipe`` (``cards.py``): an operator's ONNX model.

docs/ACCURACY.md gives the measurements that chose between them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np
from numpy.typing import NDArray

from facedb.domain import NetworkName
from facedb.errors import UnknownModelVersion
from facedb.pipeline.types import Detection

SIDE = 160
LEGACY_VERSION = "facenet-128d/keras-facenet-6acdd8fb/normalization=Facenet"
MARGIN_MIRROR_VERSION = "facenet-128d/keras-facenet-6acdd8fb/margin10-square-level-rgb-mirror"
FUSED_VERSION = f"fused-w0.5/{MARGIN_MIRROR_VERSION}+dlib-resnet-v1-55533b28/chip150"
TRIPLE_VERSION = (
    f"fused-w0.333/{MARGIN_MIRROR_VERSION}+dlib-resnet-v1-55533b28/chip150"
    "+sface-0ba9fbfa/arcface112-eyes-rgb-mirror"
)

Views = tuple[NDArray[Any], ...]  # a face's inputs, one array per part of its recipe


class Network(Protocol):
    """A recognition network: inputs of a face → one unit vector (built on first use).

    ``releases_gil``: whether the network computes without holding Python's GIL (ONNX
    Runtime does; dlib's descriptor does not), so it can run beside another network.
    """

    dimension: int
    releases_gil: bool

    def embed(self, views: list[NDArray[Any]]) -> NDArray[np.float32]:
        """Return (n, dimension) unit vectors, face i's views (v, ...) averaged."""

    def load(self) -> None:
        """Build the network now rather than on first use."""

    @property
    def loaded(self) -> bool:
        """Whether it is built."""


def prewhiten(rgb: NDArray[np.uint8]) -> NDArray[np.float32]:
    """Return the image scaled to zero mean and unit deviation (facenet's ``prewhiten``)."""
    x = rgb.astype(np.float32)
    std = max(float(x.std()), 1.0 / math.sqrt(x.size))
    return np.asarray((x - x.mean()) / std, dtype=np.float32)


def margin_crop(
    bgr: NDArray[np.uint8],
    detection: Detection,
    margin: float,
    rotate: bool = False,
    square: bool = False,
    side: int = SIDE,
) -> NDArray[np.uint8]:
    """Return the box grown by ``margin`` (share of its size, split between both sides),
    resampled to ``side`` x ``side`` (BGR uint8); outside the photo is black.

    ``square`` widens the shorter side first so the face keeps its aspect; ``rotate``
    levels the eyes about the box centre.
    """
    box = detection.box
    cx, cy = box.x + box.w / 2.0, box.y + box.h / 2.0
    w, h = box.w * (1.0 + margin), box.h * (1.0 + margin)
    if square:
        w = h = max(w, h)
    angle = 0.0
    if rotate and detection.left_eye and detection.right_eye:
        (lx, ly), (rx, ry) = detection.right_eye, detection.left_eye  # observer's left first
        angle = math.atan2(ry - ly, rx - lx)
    # Shrink large faces with area averaging first: sampling straight down aliases.
    shrink = min(1.0, 2.0 * side / max(w, h))
    if shrink < 1.0:
        reach = math.hypot(w, h) / 2.0 + 2.0
        x0, y0 = max(0, int(cx - reach)), max(0, int(cy - reach))
        x1, y1 = min(bgr.shape[1], int(cx + reach) + 1), min(bgr.shape[0], int(cy + reach) + 1)
        region = bgr[y0:y1, x0:x1]
        size = (max(1, round(region.shape[1] * shrink)), max(1, round(region.shape[0] * shrink)))
        bgr = np.asarray(cv2.resize(region, size, interpolation=cv2.INTER_AREA), np.uint8)
        cx, cy, w, h = (cx - x0) * shrink, (cy - y0) * shrink, w * shrink, h * shrink
    cos, sin = math.cos(angle), math.sin(angle)
    sx, sy = side / w, side / h
    # destination = scale * rotate(-angle) * (source - centre) + side/2
    matrix = np.array(
        [
            [sx * cos, sx * sin, side / 2.0 - sx * (cos * cx + sin * cy)],
            [-sy * sin, sy * cos, side / 2.0 - sy * (-sin * cx + cos * cy)],
        ],
        dtype=np.float64,
    )
    out = cv2.warpAffine(
        bgr, matrix, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )
    return np.asarray(out, dtype=np.uint8)


def display_crop(bgr: NDArray[np.uint8], detection: Detection, side: int) -> NDArray[np.uint8]:
    """Return the face as people look at it: square, a margin around it, RGB."""
    return np.ascontiguousarray(
        margin_crop(bgr, detection, 0.3, square=True, side=side)[:, :, ::-1]
    )


Networks = dict[str, Network]


class Recipe(Protocol):
    @property
    def version(self) -> str:
        """The model version its embeddings are stored under."""

    @property
    def parts(self) -> tuple[tuple[str, float], ...]:
        """(network name, weight) of each part, in the order of ``views``."""

    @property
    def dimension(self) -> int:
        """The length of its embeddings."""

    @property
    def part_dimensions(self) -> tuple[int, ...]:
        """The length of each part's vector, in the order of ``parts`` (they sum to
        ``dimension``)."""

    @property
    def match_threshold(self) -> float:
        """Its score reached by 1 stranger pair in 10,000 on lfw-dev (FAR 1e-4)."""

    @property
    def candidate_threshold(self) -> float:
        """Its score reached by 1 stranger pair in 10 on lfw-dev (FAR 10%)."""

    def views(self, bgr: NDArray[np.uint8], detection: Detection, networks: Networks) -> Views:
        """Return each part's inputs for one face (a part's views are averaged)."""


@dataclass(frozen=True)
class LegacyRecipe:
    """deepface.represent's input: its aligned tight chip, BGR, 'Facenet' normalisation."""

    version: str = LEGACY_VERSION
    parts: tuple[tuple[str, float], ...] = ((NetworkName.FACENET, 1.0),)
    dimension: int = 128
    part_dimensions: tuple[int, ...] = (128,)
    match_threshold: float = 0.59  # the current recipe's: it served with them
    candidate_threshold: float = 0.22

    def views(self, bgr: NDArray[np.uint8], detection: Detection, networks: Networks) -> Views:
        from facedb.pipeline.align import aligned_chip

        return (legacy_input(aligned_chip(bgr, detection)),)


def legacy_input(chip_bgr: NDArray[np.uint8]) -> NDArray[np.float32]:
    """Return the (1, 160, 160, 3) input exactly as deepface.represent prepares it."""
    from deepface.modules import preprocessing

    scaled = chip_bgr.astype(np.float32) / 255.0
    resized = preprocessing.resize_image(img=scaled, target_size=(SIDE, SIDE))
    return np.asarray(preprocessing.normalize_input(img=resized, normalization="Facenet"))


@dataclass(frozen=True)
class MarginMirrorRecipe:
    """The box + 10% margin made square, eyes levelled, RGB, prewhitened, and its mirror."""

    margin: float = 0.1
    version: str = MARGIN_MIRROR_VERSION
    parts: tuple[tuple[str, float], ...] = ((NetworkName.FACENET, 1.0),)
    dimension: int = 128
    part_dimensions: tuple[int, ...] = (128,)
    match_threshold: float = 0.59
    candidate_threshold: float = 0.22

    def views(self, bgr: NDArray[np.uint8], detection: Detection, networks: Networks) -> Views:
        return (self.chips(bgr, detection),)

    def chips(self, bgr: NDArray[np.uint8], detection: Detection) -> NDArray[np.float32]:
        """Return FaceNet's (2, 160, 160, 3) input: the chip and its mirror."""
        crop = margin_crop(bgr, detection, self.margin, rotate=True, square=True)
        return with_mirror(prewhiten(crop[:, :, ::-1]))


@dataclass(frozen=True)
class FusedRecipe:
    """FaceNet (margin + mirror) beside dlib's ResNet descriptor (its chip alone), equal
    weights: the fused score is the mean of the two cosines. dlib's cosines run high
    (strangers 0.84 on average on lfw-dev), so the thresholds are this recipe's own,
    measured as FaceNet's were."""

    version: str = FUSED_VERSION  # names the weights: another weighting is another version
    parts: tuple[tuple[str, float], ...] = ((NetworkName.FACENET, 0.5), (NetworkName.DLIB, 0.5))
    dimension: int = 256
    part_dimensions: tuple[int, ...] = (128, 128)
    match_threshold: float = 0.755  # FAR 1e-4 on lfw-dev (403,550 stranger pairs)
    candidate_threshold: float = 0.541  # FAR 10%

    def views(self, bgr: NDArray[np.uint8], detection: Detection, networks: Networks) -> Views:
        from facedb.pipeline.dlib_resnet import DlibDescriptor

        dlib = networks[NetworkName.DLIB]
        assert isinstance(dlib, DlibDescriptor)  # it finds its own landmarks in the box
        return (MarginMirrorRecipe().chips(bgr, detection), dlib.views(bgr, detection))


@dataclass(frozen=True)
class TripleRecipe:
    """FaceNet (margin + mirror), dlib's descriptor (its chip) and SFace (ArcFace's chip and
    its mirror), equal weights: the fused score is the mean of the three cosines. Three
    networks trained apart make different mistakes; the thresholds are this recipe's own,
    measured as FaceNet's were."""

    version: str = TRIPLE_VERSION
    parts: tuple[tuple[str, float], ...] = (
        (NetworkName.FACENET, 1 / 3),
        (NetworkName.DLIB, 1 / 3),
        (NetworkName.SFACE, 1 / 3),
    )
    dimension: int = 384
    part_dimensions: tuple[int, ...] = (128, 128, 128)
    match_threshold: float = 0.612  # FAR 1e-4 on lfw-dev (403,550 stranger pairs)
    candidate_threshold: float = 0.420  # FAR 10%

    def views(self, bgr: NDArray[np.uint8], detection: Detection, networks: Networks) -> Views:
        from facedb.pipeline.sface import SFaceRecogniser

        return (*FusedRecipe().views(bgr, detection, networks),
                SFaceRecogniser.views(bgr, detection))  # fmt: skip


def with_mirror(chip: NDArray[Any], mirror: bool = True) -> NDArray[Any]:
    """Return the (views, ...) stack of a chip, and its left-right mirror when asked."""
    return np.stack([chip, np.ascontiguousarray(chip[:, ::-1])] if mirror else [chip])


def average_views(raw: NDArray[np.float32], counts: list[int]) -> NDArray[np.float32]:
    """Return one unit vector per face from a network's raw outputs, one row per view:
    each view made unit length, face i's ``counts[i]`` consecutive views averaged."""
    raw = raw / np.maximum(np.linalg.norm(raw, axis=1, keepdims=True), 1e-12)
    vectors = np.add.reduceat(raw, np.cumsum([0, *counts[:-1]]), axis=0)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


def fuse(parts: list[tuple[NDArray[np.float32], float]]) -> NDArray[np.float32]:
    """Return the parts' unit vectors scaled by sqrt(weight), side by side, renormalised."""
    joined = np.concatenate([v * np.float32(math.sqrt(w)) for v, w in parts], axis=1)
    norms = np.linalg.norm(joined, axis=1, keepdims=True)
    return np.ascontiguousarray(joined / np.maximum(norms, 1e-12), dtype=np.float32)


_ALL: tuple[Recipe, ...] = (LegacyRecipe(), MarginMirrorRecipe(), FusedRecipe(), TripleRecipe())
RECIPES: dict[str, Recipe] = {r.version: r for r in _ALL}
CURRENT: Recipe = RECIPES[TRIPLE_VERSION]


def chosen_recipe(name: str) -> Recipe:
    """Return the recipe FACEDB_RECIPE names (a short name or a version); empty: the default."""
    if not name:
        return CURRENT
    found = SHORT_NAMES.get(name) or RECIPES.get(name)
    if found is None:
        raise UnknownModelVersion(
            f"FACEDB_RECIPE: unknown recipe {name!r}; choose one of "
            f"{', '.join(sorted(SHORT_NAMES))} (`facedb models status` lists them)"
        )
    return found


SHORT_NAMES: dict[str, Recipe] = {
    "legacy": RECIPES[LEGACY_VERSION],
    "facenet": RECIPES[MARGIN_MIRROR_VERSION],
    "facenet+dlib": RECIPES[FUSED_VERSION],
    "facenet+dlib+sface": RECIPES[TRIPLE_VERSION],
}
BUILT_IN = frozenset(SHORT_NAMES) | {NetworkName.DLIB, NetworkName.SFACE}


def name_of(version: str) -> str:
    """Return the short name of the recipe of ``version`` (the version itself if it has none);
    a recipe with an age axis removed is its base's name, so marked."""
    base = base_version(version)
    name = next((n for n, r in SHORT_NAMES.items() if r.version == base), base)
    return name if base == version else f"{name} (age axis removed)"


AGE_AXIS_TAG = "/minus-age-axis-"  # a version with it: its base's, an age axis removed


def base_version(version: str) -> str:
    """Return the version of the recipe ``version`` removes an age axis from (else itself)."""
    return version.split(AGE_AXIS_TAG, 1)[0]


def register(recipe: Recipe, name: str) -> None:
    """Make an installed recogniser's recipe known by its version and its name."""
    RECIPES[recipe.version] = recipe
    SHORT_NAMES[name] = recipe


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

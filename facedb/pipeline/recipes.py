"""How a detected face becomes an embedding: which networks, fed which chips, fused how.

A recipe is data (``Recipe``): the model version its embeddings are stored under, its parts
(a network, the chip it is fed, a weight), its thresholds, and optionally an age axis it
removes. A face's embedding is its parts' unit vectors fused (``vectors.py``). The recipes
one process knows are one ``RecipeBook``, built in ``wiring.py`` and owned by the analyzer:
the built-in ones, the recognisers `facedb models add` installed, and those with an age axis
removed that the database's ``age_axes`` name. Built-ins:

- ``legacy``: deepface's way (a tight box, rotated on the eyes, aspect-padded, fed in BGR).
  Kept so a database made with it keeps serving until ``facedb reindex --re-embed``.
- ``facenet``: close to the input the weights were trained on (David Sandberg's facenet:
  the MTCNN box with a margin, resized to 160x160, RGB, prewhitened), widened to a square
  so the face keeps its shape and turned so the eyes are level, and embedded with its
  mirror image, the two embeddings averaged.
- ``facenet+dlib``: that FaceNet embedding beside dlib's ResNet descriptor (its own 5-point
  chip), equal weights: 256 values.
- ``facenet+dlib+sface``: those two beside OpenCV Zoo's SFace (ArcFace's 112x112 chip and
  its mirror), equal weights: 384 values (the default until the register-scale measurements).
- ``facenet+dlib+sface-weighted`` (the default): the same three weighed 0.25 / 0.30 / 0.45,
  as chosen among 11,323 strangers; a database of ``facenet+dlib+sface`` moves to it by a
  re-embed that reads no photo (``Recipe.parts_in``).

docs/ACCURACY.md gives the measurements that chose between them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from facedb.domain import NetworkName
from facedb.errors import UnknownModelVersion
from facedb.models.cards import Card, Installed, installed
from facedb.pipeline.age_axis import remove_axis
from facedb.pipeline.chips import (
    CardChip,
    dlib_chip,
    facenet_legacy,
    facenet_margin_mirror,
    sface_chip,
)
from facedb.pipeline.types import ChipFn, Detection, Networks, Views
from facedb.pipeline.vectors import Vectors, join_parts, split_parts
from facedb.records import AGE_AXIS_TAG, AgeAxis

LEGACY_VERSION = "facenet-128d/keras-facenet-6acdd8fb/normalization=Facenet"
MARGIN_MIRROR_VERSION = "facenet-128d/keras-facenet-6acdd8fb/margin10-square-level-rgb-mirror"
FUSED_VERSION = f"fused-w0.5/{MARGIN_MIRROR_VERSION}+dlib-resnet-v1-55533b28/chip150"
TRIPLE_VERSION = (
    f"fused-w0.333/{MARGIN_MIRROR_VERSION}+dlib-resnet-v1-55533b28/chip150"
    "+sface-0ba9fbfa/arcface112-eyes-rgb-mirror"
)

# The same three networks weighed as chosen at the size of a register (docs/ACCURACY.md,
# "Register scale"): FaceNet 0.25, dlib 0.30, SFace 0.45 of the fused cosine.
WEIGHTED = (0.25, 0.30, 0.45)
WEIGHTED_VERSION = (
    f"fused-w0.25-0.30-0.45/{MARGIN_MIRROR_VERSION}+dlib-resnet-v1-55533b28/chip150"
    "+sface-0ba9fbfa/arcface112-eyes-rgb-mirror"
)


@dataclass(frozen=True)
class Part:
    """One network of a recipe, the chip it is fed and its weight in the fusion."""

    network: str  # a NetworkName, or an installed recogniser's name
    chip: ChipFn
    weight: float
    dimension: int = 128


@dataclass(frozen=True)
class Recipe:
    """Which networks a face is fed to, and how; its version names exactly that.

    ``match_threshold``: its score reached by 1 stranger pair in 10,000 on lfw-dev (FAR
    1e-4); ``candidate_threshold``: by 1 in 10 (FAR 10%). With ``axis``, each part's unit
    vector loses its age direction before the parts are joined; the thresholds stay the
    base recipe's (by their rule on lfw-dev, with an age direction removed they move by at
    most 0.004: bench.age_direction).
    """

    version: str
    parts: tuple[Part, ...]
    match_threshold: float
    candidate_threshold: float
    axis: AgeAxis | None = None

    @property
    def dimension(self) -> int:
        return sum(p.dimension for p in self.parts)

    @property
    def part_dimensions(self) -> tuple[int, ...]:
        return tuple(p.dimension for p in self.parts)

    @property
    def networks(self) -> tuple[str, ...]:
        return tuple(p.network for p in self.parts)

    @property
    def base_version(self) -> str:
        """The version of the recipe this one removes an age axis from (else its own)."""
        return self.axis.base_version if self.axis is not None else self.version

    def views(self, bgr: NDArray[np.uint8], detection: Detection, networks: Networks) -> Views:
        """Return each part's inputs for one face (a part's views are averaged)."""
        return tuple(p.chip(bgr, detection, networks) for p in self.parts)

    def joined(self, parts: list[Vectors]) -> Vectors:
        """Return the embeddings (n, dimension) from each part's unit vectors."""
        if self.axis is not None:
            parts = remove_axis(self.axis, parts)
        return join_parts(parts, [p.weight for p in self.parts])

    def derive(self, stored: Vectors) -> Vectors:
        """Return the base recipe's stored embeddings (n, dimension) as this one makes them."""
        return self.joined(split_parts(stored, self.part_dimensions))

    def parts_in(self, stored: Recipe) -> tuple[int, ...] | None:
        """Where each of this recipe's parts lies among ``stored``'s, when embeddings of
        ``stored`` hold them all (the same network fed the same chip, weighted above zero,
        no age axis removed): then this recipe's embeddings are arithmetic on those
        (``from_parts``) and a re-embed reads no photo. None otherwise."""
        if stored.axis is not None or self.axis is not None:
            return None
        where = []
        for part in self.parts:
            same = (part.network, part.chip, part.dimension)
            found = [i for i, p in enumerate(stored.parts)
                     if (p.network, p.chip, p.dimension) == same and p.weight > 0]  # fmt: skip
            if not found:
                return None
            where.append(found[0])
        return tuple(where)

    def from_parts(self, stored: Vectors, of: Recipe) -> Vectors:
        """Return embeddings (n, dimension) of ``of`` as this recipe makes them (``parts_in``
        must have found its parts there)."""
        where = self.parts_in(of)
        if where is None:
            raise ValueError(f"{self.version} cannot be made from {of.version}'s embeddings")
        parts = split_parts(stored, of.part_dimensions)
        return self.joined([parts[i] for i in where])

    def with_axis(self, axis: AgeAxis) -> Recipe:
        """This recipe with ``axis`` removed (its version names the directions)."""
        return replace(self, version=axis.version, axis=axis)


_FACENET = Part(NetworkName.FACENET, facenet_margin_mirror, 1.0)
_THIRD = 1 / 3
BUILT_IN: Mapping[str, Recipe] = {
    # legacy: FaceNet's thresholds (it served with them)
    "legacy": Recipe(LEGACY_VERSION, (Part(NetworkName.FACENET, facenet_legacy, 1.0),),
                     match_threshold=0.59, candidate_threshold=0.22),
    "facenet": Recipe(MARGIN_MIRROR_VERSION, (_FACENET,),
                      match_threshold=0.59, candidate_threshold=0.22),
    # dlib's cosines run high (strangers 0.84 on average on lfw-dev), so each fusion has its
    # own thresholds, measured as FaceNet's were (403,550 stranger pairs).
    "facenet+dlib": Recipe(FUSED_VERSION, (replace(_FACENET, weight=0.5),
                                           Part(NetworkName.DLIB, dlib_chip, 0.5)),
                           match_threshold=0.755, candidate_threshold=0.541),
    "facenet+dlib+sface": Recipe(TRIPLE_VERSION, (replace(_FACENET, weight=_THIRD),
                                                  Part(NetworkName.DLIB, dlib_chip, _THIRD),
                                                  Part(NetworkName.SFACE, sface_chip, _THIRD)),
                                 match_threshold=0.612, candidate_threshold=0.420),
    # bench.register_scale: the lfw-dev rule gives 0.5809 and 0.3975
    "facenet+dlib+sface-weighted": Recipe(
        WEIGHTED_VERSION, (replace(_FACENET, weight=WEIGHTED[0]),
                           Part(NetworkName.DLIB, dlib_chip, WEIGHTED[1]),
                           Part(NetworkName.SFACE, sface_chip, WEIGHTED[2])),
        match_threshold=0.581, candidate_threshold=0.398),
}  # fmt: skip
DEFAULT = BUILT_IN["facenet+dlib+sface-weighted"]
# Names an installed recogniser may not take: the built-in recipes' and networks'.
RESERVED_NAMES = frozenset(BUILT_IN) | {NetworkName.DLIB, NetworkName.SFACE}


def card_recipe(card: Card) -> Recipe:
    """An installed recogniser as a recipe: its chip, its network, its thresholds (an
    installed card always has them: `facedb models add` estimates those it lacks)."""
    chip = f"{card.alignment.value}{card.input_size}-{card.colour.value}-{card.normalisation.value}"
    return Recipe(
        version=f"onnx/{card.name}-{card.sha256[:8]}/{chip}{'-mirror' if card.mirror else ''}",
        parts=(Part(card.name, CardChip(card), 1.0, card.dimension),),
        match_threshold=float(card.match_threshold or 0.0),
        candidate_threshold=float(card.candidate_threshold or 0.0),
    )


def base_version(version: str) -> str:
    """Return the version of the recipe ``version`` removes an age axis from (else itself)."""
    return version.split(AGE_AXIS_TAG, 1)[0]


class RecipeBook:
    """The recipes one process knows, by short name and by version (thread-safe).

    Built with the built-in ones; ``add_installed`` adds the recognisers `facedb models add`
    installed, ``add_axis`` a recipe with an age axis removed (learned by a re-index here,
    or read from the database that another process wrote it to).
    """

    def __init__(self, recipes: Mapping[str, Recipe] = BUILT_IN) -> None:
        self._lock = threading.Lock()
        self._names: dict[str, Recipe] = dict(recipes)
        self._versions: dict[str, Recipe] = {r.version: r for r in recipes.values()}

    @classmethod
    def with_installed(cls, model_dir: Path) -> RecipeBook:
        """The built-in recipes and those of the recognisers installed in ``model_dir``."""
        book = cls()
        book.add_installed(installed(model_dir))
        return book

    def chosen(self, name: str) -> Recipe:
        """Return the recipe FACEDB_RECIPE names (a short name or a version); empty: the
        default."""
        if not name:
            return DEFAULT
        with self._lock:
            found = self._names.get(name) or self._versions.get(name)
            names = sorted(self._names)
        if found is None:
            raise UnknownModelVersion(
                f"FACEDB_RECIPE: unknown recipe {name!r}; choose one of {', '.join(names)} "
                "(`facedb models status` lists them)"
            )
        return found

    def of(self, version: str) -> Recipe:
        """Return the recipe that made embeddings of ``version``."""
        with self._lock:
            found = self._versions.get(version)
            known = sorted(self._versions)
        if found is None:
            raise UnknownModelVersion(
                f"the database's embeddings were made by model version {version!r}, which "
                f"this FaceDB cannot make (it knows {', '.join(known)}). Run the FaceDB "
                "release that made them, or `facedb reindex --re-embed`."
            )
        return found

    def knows(self, version: str) -> bool:
        with self._lock:
            return version in self._versions

    def named(self) -> dict[str, Recipe]:
        """Every recipe with a short name (built-in and installed), by name."""
        with self._lock:
            return dict(self._names)

    def name_of(self, version: str) -> str:
        """Return the short name of the recipe of ``version`` (the version itself if it has
        none); a recipe with an age axis removed is its base's name, so marked."""
        base = base_version(version)
        with self._lock:
            name = next((n for n, r in self._names.items() if r.version == base), base)
        return name if base == version else f"{name} (age axis removed)"

    def add(self, recipe: Recipe, name: str | None = None) -> Recipe:
        """Know ``recipe`` by its version (and by ``name``); return it."""
        with self._lock:
            self._versions[recipe.version] = recipe
            if name is not None:
                self._names[name] = recipe
        return recipe

    def add_axis(self, axis: AgeAxis) -> Recipe:
        """Know the recipe ``axis`` makes (its base with the axis removed); return it."""
        return self.add(self.of(axis.base_version).with_axis(axis))

    def add_installed(self, recognisers: Iterable[Installed]) -> None:
        """Know the installed recognisers' recipes, by version and by the card's name."""
        for item in recognisers:
            self.add(card_recipe(item.card), item.card.name)

"""The age axis: a direction learned from a database's own faces and removed from its embeddings.

An embedding mixes who a face is with how old it looks; between a childhood photo and an
adult one the second part works against the match. Across faces whose ages vary, the first
principal component of a network's embeddings is that age direction, and removing it
(``x - (x . u) u``, renormalised) from every enrolled face and every search lifts cross-age
search (docs/ACCURACY.md, "The age axis"; ``bench.age_direction``). Among adults only the
first component is something else and removing it only hurts, so a direction is kept only
where the faces' ages span childhood and adulthood and their positions along it follow
their ages (``AxisGuard``).

A recipe with an age axis removed (``Recipe.axis``) is the base recipe with one direction
per part removed. Its version names the directions (a digest of them), so a direction
learned again is another version: a database moves to it like any re-embed, and embeddings
made with two directions are never compared. The directions live in the database
(``age_axes``), not in a model file: they are the collection's, learned by
``facedb reindex --remove-age-axis``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from facedb.errors import AgeAxisRefused
from facedb.pipeline.vectors import Vectors, split_parts, unit
from facedb.records import AgeAxis

CHILDHOOD_ENDS = 13  # ages below it count as childhood
ADULTHOOD_STARTS = 20


def remove_axis(axis: AgeAxis, parts: list[Vectors]) -> list[Vectors]:
    """Return each part's unit vectors (n, d) without its direction, renormalised (a zero
    direction leaves its part as it is)."""
    return [unit(p - np.outer(p @ u, u)) for p, u in zip(parts, axis.directions, strict=True)]


# --- learning it ----------------------------------------------------------------------------
@dataclass(frozen=True)
class AxisGuard:
    """Which learned directions are kept: enough faces, ages spanning childhood and
    adulthood, and along each direction the faces' ages.

    Ages are declared where birth and photo dates are known, else estimated.
    bench.age_direction, bench.queue_bench and `facedb eval --remove-age-axis` measured where
    removing the first component helps: in populations holding 9-32% children (under 13)
    beside adults (utk-dev, LAG, LAG's registers among lfw-dev strangers). Among adults only
    (lfw-dev, no child) it is something else, and removing it made FNIR at FPIR 1% worse
    (0.076 -> 0.101), even where it followed the adults' ages (|r| 0.46): ``min_share`` asks
    for both children and adults, each at least that share of the faces with an age (halfway
    between none and the fewest measured to gain). ``min_correlation``: |r| between faces'
    positions along a part's direction and their ages; FaceNet's measured 0.52-0.65 and
    dlib's 0.51 where the direction was the age axis (|cosine| 0.79-0.96 with utk-dev's
    labelled one), dlib's 0.03-0.28 on LAG where it was not. A part whose direction falls
    short keeps its vectors as they are.
    ``min_faces``: a first component of a few dozen faces is mostly noise.
    """

    min_faces: int = 200
    min_share: float = 0.05
    min_correlation: float = 0.45

    def keep(self, axis: AgeAxis) -> AgeAxis:
        """Return ``axis`` with each direction that does not follow age left out (zero: that
        part unchanged); raise AgeAxisRefused, saying why, when none is left."""
        if axis.aged_faces < self.min_faces:
            raise AgeAxisRefused(
                f"the age axis is learned from at least {self.min_faces} faces with an age; "
                f"this database holds {axis.aged_faces}. Nothing was changed: enroll more "
                "faces first"
            )
        if min(axis.children, axis.adults) < self.min_share * axis.aged_faces:
            raise AgeAxisRefused(
                f"the faces' ages do not span childhood and adulthood: of {axis.aged_faces} "
                f"faces with an age {axis.children} are under {CHILDHOOD_ENDS} and "
                f"{axis.adults} are {ADULTHOOD_STARTS} or over, and each needs at least "
                f"{self.min_share:.0%}: only where both are is the faces' main direction "
                "their age, and removing another would make search worse. Nothing was changed"
            )
        follows = [r >= self.min_correlation for r in axis.age_correlations]
        if not any(follows):
            raise AgeAxisRefused(
                "the main direction of this database's faces does not follow their ages "
                f"(|r| = {max(axis.age_correlations):.2f}, needed {self.min_correlation}); "
                "removing it would make search worse. Nothing was changed"
            )
        directions = tuple(
            d if keep else np.zeros_like(d)
            for d, keep in zip(axis.directions, follows, strict=True)
        )
        return replace(axis, directions=directions)


@dataclass
class _Moments:
    """Running sums of one part's vectors: over every face (for the principal component)
    and over faces with an age (for the correlation with it)."""

    dimension: int
    n: int = 0
    total: NDArray[np.float64] = field(init=False)
    outer: NDArray[np.float64] = field(init=False)
    m: int = 0
    aged_total: NDArray[np.float64] = field(init=False)
    aged_outer: NDArray[np.float64] = field(init=False)
    with_age: NDArray[np.float64] = field(init=False)
    ages: float = 0.0
    age_squares: float = 0.0

    def __post_init__(self) -> None:
        d = self.dimension
        self.total, self.aged_total, self.with_age = np.zeros(d), np.zeros(d), np.zeros(d)
        self.outer, self.aged_outer = np.zeros((d, d)), np.zeros((d, d))

    def add(self, x: NDArray[np.float64], ages: NDArray[np.float64]) -> None:
        self.n += len(x)
        self.total += x.sum(axis=0)
        self.outer += x.T @ x
        known = ~np.isnan(ages)
        xa, a = x[known], ages[known]
        self.m += len(a)
        self.aged_total += xa.sum(axis=0)
        self.aged_outer += xa.T @ xa
        self.with_age += a @ xa
        self.ages += float(a.sum())
        self.age_squares += float(a @ a)

    def first_component(self) -> NDArray[np.float64]:
        """The unit direction of greatest variance, signed to grow with age."""
        mean = self.total / self.n
        covariance = self.outer / self.n - np.outer(mean, mean)
        u = np.linalg.eigh(covariance)[1][:, -1]
        return -u if self.age_covariance(u) < 0 else u

    def age_covariance(self, u: NDArray[np.float64]) -> float:
        if self.m == 0:
            return 0.0
        mean = u @ self.aged_total / self.m
        return float(u @ self.with_age / self.m - mean * self.ages / self.m)

    def age_correlation(self, u: NDArray[np.float64]) -> float:
        """|r| between the aged faces' positions along ``u`` and their ages (0 if unmeasurable)."""
        if self.m < 2:
            return 0.0
        mean = u @ self.aged_total / self.m
        spread = float(u @ (self.aged_outer / self.m) @ u - mean * mean)
        age_spread = self.age_squares / self.m - (self.ages / self.m) ** 2
        if spread <= 0 or age_spread <= 0:
            return 0.0
        return abs(self.age_covariance(u)) / math.sqrt(spread * age_spread)


class Learnable(Protocol):
    """What learning an axis needs of a recipe (``recipes.Recipe`` has it)."""

    @property
    def version(self) -> str: ...

    @property
    def part_dimensions(self) -> tuple[int, ...]: ...


class AxisLearner:
    """Learns a recipe's age axis from its stored embeddings, fed in chunks (one pass)."""

    def __init__(self, recipe: Learnable) -> None:
        self.recipe = recipe
        self._moments = [_Moments(d) for d in recipe.part_dimensions]
        self._children = self._adults = 0

    def add(self, stored: Vectors, ages: NDArray[np.float64]) -> None:
        """Take embeddings (n, dimension) of the recipe and each face's age (NaN: unknown)."""
        ages = np.asarray(ages, np.float64)
        self._children += int(np.sum(ages < CHILDHOOD_ENDS))
        self._adults += int(np.sum(ages >= ADULTHOOD_STARTS))
        for moments, part in zip(
            self._moments, split_parts(stored, self.recipe.part_dimensions), strict=True
        ):
            moments.add(part.astype(np.float64), ages)

    def learned(self) -> AgeAxis:
        """Return each part's first principal component and how it follows age."""
        if self._moments[0].n == 0:
            raise AgeAxisRefused("the database holds no faces to learn an age axis from")
        directions = [m.first_component() for m in self._moments]
        return AgeAxis(
            base_version=self.recipe.version,
            directions=tuple(np.asarray(u, np.float32) for u in directions),
            faces=self._moments[0].n,
            aged_faces=self._moments[0].m,
            children=self._children,
            adults=self._adults,
            age_correlations=tuple(
                round(m.age_correlation(u), 4)
                for m, u in zip(self._moments, directions, strict=True)
            ),
        )

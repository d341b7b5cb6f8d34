"""The age axis on synthetic embeddings: learned from a population whose ages vary, refused
where they do not, removed alike from stored embeddings and from parts before they are joined."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from facedb.errors import AgeAxisRefused
from facedb.pipeline.age_axis import AxisGuard, AxisLearner
from facedb.pipeline.recipes import BUILT_IN, FUSED_VERSION, Recipe, RecipeBook, base_version
from facedb.pipeline.vectors import Vectors
from facedb.pipeline.vectors import join_parts as join_weighted
from facedb.pipeline.vectors import split_parts as split_dimensions
from facedb.records import AgeAxis
from tests.factories import unit_vectors

FACENET = BUILT_IN["facenet"]  # one 128-d part


def join_parts(parts: list[Vectors], recipe: Recipe) -> Vectors:
    return join_weighted(parts, [p.weight for p in recipe.parts])


def split_parts(stored: Vectors, recipe: Recipe) -> list[Vectors]:
    return split_dimensions(stored, recipe.part_dimensions)


def population(
    n: int, seed: int, age_weight: float, ages: NDArray[np.float64], dimension: int = 128
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Faces of random identities plus ``age_weight`` x (age, centred and scaled) along one
    planted direction; return (embeddings, the planted direction)."""
    rng = np.random.default_rng(seed)
    direction = unit_vectors(1, seed + 1, dimension)[0]
    who = unit_vectors(n, seed + 2, dimension)
    along = (ages - 30.0) / 15.0
    x = who + age_weight * along[:, None] * direction + 0.2 * rng.standard_normal(who.shape)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), direction


def test_the_first_component_of_faces_whose_ages_vary_is_their_age_direction() -> None:
    ages = np.random.default_rng(0).uniform(2, 60, 600)
    x, planted = population(600, 1, 0.6, ages)
    learner = AxisLearner(FACENET)
    for chunk in range(0, 600, 250):  # fed in chunks, as read from the database
        learner.add(x[chunk : chunk + 250], ages[chunk : chunk + 250])
    axis = learner.learned()
    assert abs(float(axis.directions[0] @ planted)) > 0.95
    assert axis.faces == axis.aged_faces == 600
    assert axis.age_correlations[0] > 0.8
    assert AxisGuard().keep(axis) == axis  # kept whole
    # Signed to grow with age, so the same faces always give the same version.
    assert float(np.corrcoef(x @ axis.directions[0], ages)[0, 1]) > 0
    assert axis.version.startswith(FACENET.version + "/minus-age-axis-")
    assert base_version(axis.version) == FACENET.version
    assert RecipeBook().name_of(axis.version) == "facenet (age axis removed)"
    other = AgeAxis(FACENET.version, (unit_vectors(1, 9)[0],))
    assert other.version != axis.version


def test_faces_of_unknown_age_shape_the_direction_but_not_its_check() -> None:
    ages = np.random.default_rng(0).uniform(2, 60, 600)
    x, planted = population(600, 1, 0.6, ages)
    unknown = ages.copy()
    unknown[::3] = np.nan
    learner = AxisLearner(FACENET)
    learner.add(x, unknown)
    axis = learner.learned()
    assert axis.faces == 600 and axis.aged_faces == 400
    assert abs(float(axis.directions[0] @ planted)) > 0.95 and axis.age_correlations[0] > 0.8


def test_a_direction_that_does_not_follow_age_is_refused_saying_why() -> None:
    ages = np.random.default_rng(0).uniform(2, 60, 600)
    x, _ = population(600, 1, 0.0, ages)  # no age in the embeddings
    strong = unit_vectors(1, 5)[0]  # something else varies most (lighting, a camera)
    x = x + 0.8 * np.random.default_rng(6).standard_normal((600, 1)) * strong
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    learner = AxisLearner(FACENET)
    learner.add(x, ages)
    axis = learner.learned()
    assert axis.age_correlations[0] < 0.3
    with pytest.raises(AgeAxisRefused, match="does not follow their ages"):
        AxisGuard().keep(axis)


def test_adults_only_are_refused_even_where_the_direction_follows_their_ages() -> None:
    """Among adults the main direction can follow age (lfw-dev's gallery: |r| 0.46) and
    removing it still made search worse: childhood and adulthood must both be there."""
    ages = np.random.default_rng(0).uniform(20, 80, 600)
    x, _ = population(600, 1, 0.6, ages)
    learner = AxisLearner(FACENET)
    learner.add(x, ages)
    axis = learner.learned()
    assert axis.age_correlations[0] > 0.8 and (axis.children, axis.adults) == (0, 600)
    with pytest.raises(AgeAxisRefused, match=r"do not span childhood and adulthood: of 600 .* "
                       r"0 are under 13 and 600 are 20 or over"):  # fmt: skip
        AxisGuard().keep(axis)
    few = np.where(np.arange(600) < 20, 8.0, ages)  # 20 children in 600: under one in 20
    learner = AxisLearner(FACENET)
    learner.add(x, few)
    with pytest.raises(AgeAxisRefused, match="each needs at least 5%"):
        AxisGuard().keep(learner.learned())


def test_too_few_faces_with_an_age_are_refused() -> None:
    ages = np.full(150, np.nan)
    ages[:50] = np.linspace(3, 50, 50)
    x, _ = population(150, 1, 0.6, np.nan_to_num(ages, nan=30.0))
    learner = AxisLearner(FACENET)
    learner.add(x, ages)
    with pytest.raises(AgeAxisRefused, match=r"at least 200 faces with an age; .* holds 50"):
        AxisGuard().keep(learner.learned())
    with pytest.raises(AgeAxisRefused, match="no faces"):
        AxisLearner(FACENET).learned()


def test_removing_it_leaves_unit_vectors_orthogonal_to_it() -> None:
    ages = np.random.default_rng(0).uniform(2, 60, 300)
    x, _ = population(300, 1, 0.6, ages)
    learner = AxisLearner(FACENET)
    learner.add(x, ages)
    recipe = FACENET.with_axis(learner.learned())
    derived = recipe.derive(x)
    assert np.allclose(np.linalg.norm(derived, axis=1), 1.0, atol=1e-5)
    assert np.abs(derived @ recipe.axis.directions[0]).max() < 1e-5
    assert (recipe.dimension, recipe.part_dimensions) == (128, (128,))
    assert (recipe.match_threshold, recipe.candidate_threshold) == (
        FACENET.match_threshold,
        FACENET.candidate_threshold,
    )


def test_a_network_whose_direction_does_not_follow_age_is_left_as_it_is() -> None:
    """FaceNet's first component follows age where ages vary; dlib's need not
    (bench.age_direction): only the parts whose direction does are changed."""
    fused = BUILT_IN["facenet+dlib"]
    ages = np.random.default_rng(0).uniform(2, 60, 400)
    facenet, planted = population(400, 1, 0.6, ages)
    dlib, _ = population(400, 11, 0.0, ages)
    strong = unit_vectors(1, 5)[0]
    dlib = dlib + 0.8 * np.random.default_rng(6).standard_normal((400, 1)) * strong
    dlib = (dlib / np.linalg.norm(dlib, axis=1, keepdims=True)).astype(np.float32)
    learner = AxisLearner(fused)
    learner.add(join_parts([facenet, dlib], fused), ages)
    learned = learner.learned()
    assert learned.age_correlations[0] > 0.8 and learned.age_correlations[1] < 0.3
    kept = AxisGuard().keep(learned)
    assert abs(float(kept.directions[0] @ planted)) > 0.95
    assert not kept.directions[1].any()
    derived = split_parts(fused.with_axis(kept).derive(join_parts([facenet, dlib], fused)),
                          fused)  # fmt: skip
    assert np.allclose(derived[1], dlib, atol=1e-5)  # dlib's part unchanged
    assert np.abs(derived[0] @ kept.directions[0]).max() < 1e-5


def test_a_fused_recipe_loses_each_networks_own_direction() -> None:
    fused = BUILT_IN["facenet+dlib"]
    facenet, dlib = unit_vectors(50, 1), unit_vectors(50, 2)
    stored = join_parts([facenet, dlib], fused)
    split = split_parts(stored, fused)
    assert np.allclose(split[0], facenet, atol=1e-6) and np.allclose(split[1], dlib, atol=1e-6)
    directions = (unit_vectors(1, 3)[0], unit_vectors(1, 4)[0])
    recipe = fused.with_axis(AgeAxis(FUSED_VERSION, directions))
    derived = recipe.derive(stored)
    assert derived.shape == (50, 256)
    parts = split_parts(derived, fused)
    for part, direction in zip(parts, directions, strict=True):
        assert np.abs(part @ direction).max() < 1e-5
    # The fused score is still the mean of the two networks' cosines, each without its axis.
    assert float(derived[0] @ derived[1]) == pytest.approx(
        0.5 * float(parts[0][0] @ parts[0][1]) + 0.5 * float(parts[1][0] @ parts[1][1]), abs=1e-5
    )

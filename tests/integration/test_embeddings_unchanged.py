"""The served embeddings do not change when the code is rearranged: every built-in recipe
keeps its model version and thresholds, and embeds the celebrity photos as it did when
``tests/data/embeddings.json`` was written (before recipes became data, issue "structure").

A stored database stays valid only if the same photo gives the same vector: a change here is
a new model version, never a refactoring. The values are kept to 6 decimals and compared to
2e-6, so another CPU's last bits do not fail it while any real change (another chip, weight
or order of parts) does.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from facedb.pipeline.analyzer import FaceAnalyzer
from facedb.pipeline.recipes import BUILT_IN, DEFAULT

pytestmark = pytest.mark.models
GOLDEN = Path(__file__).resolve().parent.parent / "data" / "embeddings.json"


def test_every_built_in_recipe_embeds_the_celebrities_as_before(
    analyzer: FaceAnalyzer, celebrity: Path
) -> None:
    golden = json.loads(GOLDEN.read_text())
    assert set(golden["recipes"]) == set(BUILT_IN)
    photos = [(celebrity / "train" / name).read_bytes() for name in golden["photos"]]
    try:
        for name, said in golden["recipes"].items():
            recipe = analyzer.recipes.chosen(name)
            assert recipe.version == said["version"], name
            assert (recipe.match_threshold, recipe.candidate_threshold) == (
                said["match_threshold"],
                said["candidate_threshold"],
            ), name
            analyzer.use(recipe.version)
            made = np.stack([analyzer.analyze(photo)[0].embedding for photo in photos])
            expected = np.asarray(said["embeddings"], np.float32)
            assert made.shape == expected.shape, name
            assert np.abs(made - expected).max() < 2e-6, name
    finally:
        analyzer.use(DEFAULT.version)

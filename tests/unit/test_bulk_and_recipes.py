"""Manifest rows, chips and gender abstention: the parts of bulk import and the embedding
recipe that need no model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facedb.bulk.manifest import parse_row
from facedb.domain import EstimatedGender
from facedb.pipeline.attributes import AgeGender
from facedb.pipeline.recipes import (
    CURRENT,
    LEGACY_VERSION,
    RECIPES,
    MarginMirrorRecipe,
    margin_crop,
    prewhiten,
)
from facedb.pipeline.types import Box, Detection


def test_manifest_rows_parse_with_clear_errors(tmp_path: Path) -> None:
    record = {"external_ref": " X-1 ", "name": "A", "gender": "Female", "birth_year": "1990",
              "path": "p.jpg", "eye_colour": "brown"}  # fmt: skip
    ok = parse_row(2, record, tmp_path)
    assert ok.error is None and ok.key == "X-1" and ok.path == tmp_path / "p.jpg"
    assert ok.person == {"external_ref": "X-1", "name": "A", "gender": "female",
                         "birth_year": 1990, "attributes": {"eye_colour": "brown"}}  # fmt: skip
    for record, field in (
        ({"external_ref": "X", "path": "p", "status": "lost"}, "status"),
        ({"external_ref": "X", "path": "p", "birth_date": "12/03/1990"}, "birth_date"),
        ({"external_ref": "X", "path": "p", "birth_year": "nineteen"}, "birth_year"),
        ({"external_ref": "X", "path": "p", "taken_at": "yesterday"}, "taken_at"),
        ({"path": "p"}, "external_ref"),
    ):
        bad = parse_row(3, record, tmp_path)
        assert bad.error is not None and bad.error.field == field, record
        assert field in bad.error.message or "external_ref" in bad.error.message
    no_photo = parse_row(4, {"external_ref": "X", "name": "A"}, tmp_path)
    assert no_photo.error is None and no_photo.path is None  # a record-only row


def test_the_legacy_version_keeps_its_name() -> None:
    # Databases embedded before issue 11 carry exactly this string: it must stay known.
    assert LEGACY_VERSION == "facenet-128d/keras-facenet-6acdd8fb/normalization=Facenet"
    assert set(RECIPES) == {LEGACY_VERSION, CURRENT.version} and CURRENT.version != LEGACY_VERSION


def test_margin_crop_grows_the_box_and_keeps_it_centred() -> None:
    """A white box on black: with a 20% margin the box fills 1/1.2 of the chip, centred."""
    image = np.zeros((400, 600, 3), np.uint8)
    image[100:200, 250:350] = 255
    detection = Detection(Box(250, 100, 100, 100), 0.99, None, None)
    chip = margin_crop(image, detection, 0.2)
    assert chip.shape == (160, 160, 3)
    white = np.argwhere(chip[:, :, 0] > 127)
    side = 160 / 1.2
    assert white.min(axis=0) == pytest.approx([80 - side / 2] * 2, abs=2)
    assert white.max(axis=0) == pytest.approx([80 + side / 2] * 2, abs=2)


def test_square_crop_keeps_the_aspect_and_pads_outside_the_photo_black() -> None:
    image = np.full((200, 200, 3), 255, np.uint8)
    detection = Detection(Box(0, 0, 100, 200), 0.99, None, None)  # tall, at the edge
    chip = margin_crop(image, detection, 0.0, square=True)
    white_columns = np.where(chip[80, :, 0] > 127)[0]
    assert white_columns.min() == pytest.approx(40, abs=2)  # x < 0 of the photo is black
    assert white_columns.max() == pytest.approx(159, abs=1)


def test_rotation_levels_the_eyes() -> None:
    image = np.zeros((300, 300, 3), np.uint8)
    left, right = (110, 170), (190, 130)  # the person's left eye is the observer's right
    for x, y in (left, right):
        image[y - 3 : y + 4, x - 3 : x + 4] = 255
    detection = Detection(Box(90, 90, 120, 120), 0.99, right_eye=left, left_eye=right)
    chip = margin_crop(image, detection, 0.0, rotate=True)
    spots = np.argwhere(chip[:, :, 0] > 127)
    rows = [spots[spots[:, 1] < 80][:, 0].mean(), spots[spots[:, 1] >= 80][:, 0].mean()]
    assert abs(rows[0] - rows[1]) < 2


def test_the_current_recipe_feeds_the_chip_and_its_mirror() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (300, 300, 3), dtype=np.uint8)
    views = MarginMirrorRecipe().views(image, Detection(Box(50, 60, 150, 170), 0.9, None, None))
    assert views.shape == (2, 160, 160, 3) and views.dtype == np.float32
    assert np.array_equal(views[1], views[0][:, ::-1])
    assert abs(float(views[0].mean())) < 1e-4 and float(views[0].std()) == pytest.approx(1, 1e-3)
    assert prewhiten(np.full((4, 4, 3), 7, np.uint8)).std() == 0  # a flat image stays finite


@pytest.mark.parametrize(
    ("probability", "cut", "answer"),
    [(0.97, 0.8, EstimatedGender.FEMALE), (0.79, 0.8, EstimatedGender.UNKNOWN),
     (0.8, 0.8, EstimatedGender.FEMALE), (0.55, 0.5, EstimatedGender.FEMALE)],
)  # fmt: skip
def test_gender_is_unknown_below_the_cut(
    probability: float, cut: float, answer: EstimatedGender
) -> None:
    estimate = AgeGender(30.0, EstimatedGender.FEMALE, probability)
    assert estimate.answered(cut) is answer

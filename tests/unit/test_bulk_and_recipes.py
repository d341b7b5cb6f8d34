"""Manifest rows, chips, recipes, recogniser cards and gender abstention: the parts of bulk
import and the embedding recipes that need no model."""

from __future__ import annotations

import numpy as np
import pytest

from facedb.bulk.manifest import parse_row
from facedb.domain import EstimatedGender
from facedb.errors import ModelInstallError, UnknownModelVersion
from facedb.models.cards import Card
from facedb.pipeline.attributes import AgeGender
from facedb.pipeline.chips import CardChip, arcface_crop, margin_crop, prewhiten
from facedb.pipeline.recipes import (
    BUILT_IN,
    DEFAULT,
    FUSED_VERSION,
    LEGACY_VERSION,
    MARGIN_MIRROR_VERSION,
    TRIPLE_VERSION,
    WEIGHTED_VERSION,
    RecipeBook,
)
from facedb.pipeline.types import Box, Detection
from facedb.pipeline.vectors import fuse


def test_manifest_rows_parse_with_clear_errors() -> None:
    record = {"external_ref": " X-1 ", "name": "A", "gender": "Female", "birth_year": "1990",
              "path": "p.jpg", "eye_colour": "brown"}  # fmt: skip
    ok = parse_row(2, record)
    assert ok.error is None and ok.key == "X-1" and ok.raw_path == "p.jpg"
    assert ok.person == {"external_ref": "X-1", "name": "A", "gender": "female",
                         "birth_year": 1990, "attributes": {"eye_colour": "brown"}}  # fmt: skip
    for record, field in (
        ({"external_ref": "X", "path": "p", "status": "lost"}, "status"),
        ({"external_ref": "X", "path": "p", "birth_date": "12/03/1990"}, "birth_date"),
        ({"external_ref": "X", "path": "p", "birth_year": "nineteen"}, "birth_year"),
        ({"external_ref": "X", "path": "p", "taken_at": "yesterday"}, "taken_at"),
        ({"path": "p"}, "external_ref"),
    ):
        bad = parse_row(3, record)
        assert bad.error is not None and bad.error.field == field, record
        assert field in bad.error.message or "external_ref" in bad.error.message
    no_photo = parse_row(4, {"external_ref": "X", "name": "A"})
    assert no_photo.error is None and no_photo.raw_path == ""  # a record-only row


def test_the_legacy_version_keeps_its_name() -> None:
    # Databases embedded before issue 11 carry exactly this string: it must stay known.
    assert LEGACY_VERSION == "facenet-128d/keras-facenet-6acdd8fb/normalization=Facenet"
    versions = {r.version for r in BUILT_IN.values()}
    assert {LEGACY_VERSION, DEFAULT.version} <= versions and DEFAULT.version != LEGACY_VERSION
    assert RecipeBook().of(LEGACY_VERSION) is BUILT_IN["legacy"]


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
    (views,) = BUILT_IN["facenet"].views(
        image, Detection(Box(50, 60, 150, 170), 0.9, None, None), {}
    )
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


def test_a_fused_embedding_scores_the_weighted_mean_of_its_parts_cosines() -> None:
    rng = np.random.default_rng(3)
    a1, a2, b1, b2 = (v / np.linalg.norm(v, axis=1, keepdims=True)
                      for v in rng.standard_normal((4, 5, 128)).astype(np.float32))  # fmt: skip
    for weight in (0.5, 0.7):
        x, y = fuse([(a1, weight), (b1, 1 - weight)]), fuse([(a2, weight), (b2, 1 - weight)])
        assert x.shape == (5, 256) and np.allclose(np.linalg.norm(x, axis=1), 1, atol=1e-6)
        parts = weight * (a1 * a2).sum(1) + (1 - weight) * (b1 * b2).sum(1)
        assert np.allclose((x * y).sum(1), parts, atol=1e-6)


def test_recipes_are_chosen_by_name_and_an_unknown_name_says_which_exist() -> None:
    book = RecipeBook()
    assert book.chosen("") is DEFAULT and DEFAULT.version == WEIGHTED_VERSION
    assert book.chosen("facenet+dlib+sface-weighted") is DEFAULT and DEFAULT.dimension == 384
    assert book.chosen("facenet+dlib+sface").version == TRIPLE_VERSION
    assert book.chosen("facenet").version == MARGIN_MIRROR_VERSION
    fused = book.chosen("facenet+dlib")
    assert fused.version == FUSED_VERSION and fused.dimension == 256
    assert book.chosen(FUSED_VERSION) is fused and book.name_of(FUSED_VERSION) == "facenet+dlib"
    with pytest.raises(
        UnknownModelVersion,
        match="choose one of facenet, facenet\\+dlib, facenet\\+dlib\\+sface, "
        "facenet\\+dlib\\+sface-weighted, legacy",
    ):
        book.chosen("arcface")


def test_a_card_says_which_field_is_wrong() -> None:
    good = {"name": "mine", "file": "m.onnx", "sha256": "a" * 64, "input_size": 112,
            "layout": "nchw", "colour": "rgb", "normalisation": "symmetric",
            "alignment": "arcface-112", "dimension": 512, "licence": "ours"}  # fmt: skip
    card = Card.parse(good, "card.json")
    face = Detection(Box(50, 50, 100, 100), 0.9, (120, 90), (80, 90))
    chips = CardChip(card)(np.zeros((200, 200, 3), np.uint8), face, {})
    assert chips.shape == (2, 3, 112, 112) and chips.dtype == np.float32
    for change, message in [
        ({"name": "Mine!"}, "name must be 1-40 lower-case letters"),
        ({"file": "../m.onnx"}, "file must name a file beside the card"),
        ({"input_size": 160}, "alignment arcface-112 needs input_size 112"),
        ({"dimension": "512"}, "dimension must be a whole number"),
        ({"extra": 1}, "unknown field 'extra'"),
        ({"normalisation": "zscore"}, "normalisation 'zscore' is not one of"),
    ]:
        with pytest.raises(ModelInstallError, match=message):
            Card.parse({**good, **change}, "card.json")


def test_the_arcface_alignment_puts_the_eyes_on_the_template() -> None:
    image = np.zeros((400, 500, 3), np.uint8)
    right_eye, left_eye = (210, 180), (290, 196)  # the subject's: observer's left, right
    for x, y in (right_eye, left_eye):
        image[y - 2 : y + 3, x - 2 : x + 3] = 255
    detection = Detection(Box(170, 120, 160, 190), 0.99, left_eye, right_eye)
    chip = arcface_crop(image, detection)
    assert chip.shape == (112, 112, 3)
    bright = np.argwhere(chip[:, :, 0] > 100)
    first, second = bright[bright[:, 1] < 56].mean(0), bright[bright[:, 1] >= 56].mean(0)
    assert np.allclose(first[::-1], (38.29, 51.70), atol=1.0)  # (x, y) of the template's eyes
    assert np.allclose(second[::-1], (73.53, 51.50), atol=1.0)


def test_a_recipe_whose_parts_are_stored_is_worked_out_from_them() -> None:
    """facenet+dlib (and FaceNet alone) from the default's stored embeddings equal what
    they make from the same parts; a recipe with a part not stored, or from an axis-removed
    one, cannot be."""
    from facedb.pipeline.recipes import BUILT_IN, DEFAULT
    from facedb.pipeline.vectors import unit
    from facedb.records import AgeAxis

    rng = np.random.default_rng(0)
    parts = [unit(rng.standard_normal((5, 128))) for _ in range(3)]
    triple = BUILT_IN["facenet+dlib+sface"]
    stored = triple.joined(parts)
    for name, used in (("facenet+dlib", parts[:2]), ("facenet", parts[:1])):
        recipe = BUILT_IN[name]
        assert recipe.parts_in(triple) == tuple(range(len(used)))
        np.testing.assert_allclose(
            recipe.from_parts(stored, triple), recipe.joined(used), atol=1e-6
        )
    assert triple.parts_in(BUILT_IN["facenet+dlib"]) is None  # SFace is not stored there
    assert BUILT_IN["facenet"].parts_in(BUILT_IN["legacy"]) is None  # another chip
    axis = AgeAxis(triple.version, tuple(np.zeros(128, np.float32) for _ in range(3)))
    assert BUILT_IN["facenet+dlib"].parts_in(triple.with_axis(axis)) is None
    assert DEFAULT.parts_in(DEFAULT) is not None

"""`facedb models add CARD`: check an operator's recogniser, then install it beside the others.

Nothing is installed unless every check passes: the card reads; the model file is there
with the card's sha256; ONNX Runtime loads it; its input fits the card; on the celebrity
photos it gives ``dimension`` finite values per face that tell people apart. The model and
its card are then copied under ``<models>/recognisers/<name>/`` in one rename.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from facedb.config import Settings
from facedb.domain import Layout
from facedb.errors import ModelInstallError
from facedb.models.cards import CARD_FILE, Card, Installed, recognisers_dir
from facedb.models.catalog import sha256_file
from facedb.models.sample_data import celebrity_dataset, photos
from facedb.pipeline import onnx
from facedb.pipeline.analyzer import FaceAnalyzer
from facedb.pipeline.chips import CardChip
from facedb.pipeline.decode import NO_CAP, decode_image
from facedb.pipeline.recipes import RESERVED_NAMES
from facedb.pipeline.vectors import average_views


@dataclass(frozen=True)
class Checked:
    """What the celebrity photos showed of a recogniser."""

    faces: int
    persons: int
    same_median: float  # cosine of two photos of one person, median
    stranger_median: float
    rank1: float  # each face's best other face is the same person's
    estimated: bool  # the thresholds were estimated here, not given by the card


def add_recogniser(card_path: Path, settings: Settings) -> tuple[Installed, Checked]:
    """Check the recogniser the card describes and install it; raise ModelInstallError
    naming what is wrong (then nothing is installed)."""
    card = Card.read(card_path)
    if card.name in RESERVED_NAMES:
        raise ModelInstallError(
            f"{card_path}: the name {card.name!r} is a built-in recipe's; choose another"
        )
    model = card_path.parent / card.file
    if not model.is_file():
        raise ModelInstallError(f"{card_path}: the card names {card.file!r}; {model} is missing")
    actual = sha256_file(model)
    if actual != card.sha256:
        raise ModelInstallError(
            f"{model}: its sha256 is {actual}, the card says {card.sha256}: another or a "
            "damaged file. Check the file, or correct the card."
        )
    target = recognisers_dir(settings.models_path) / card.name
    if (target / CARD_FILE).is_file():
        raise ModelInstallError(
            f"a recogniser named {card.name!r} is installed already ({target}); a database "
            "may hold its embeddings: give the new model another name"
        )
    session = _load(model)
    _check_input(session, card, model)
    vectors, owners = _embed_celebrities(session, card, settings)
    checked = _measure(card, vectors, owners)
    if checked.estimated:
        pairs, same = _pairs(vectors, owners)
        strangers = pairs[~same]
        card = replace(
            card,
            match_threshold=round(float(strangers.max()), 4),
            candidate_threshold=round(float(np.quantile(strangers, 0.9)), 4),
        )
    _install(card, model, target)
    return Installed(card, target / card.file), checked


def _load(model: Path) -> Any:
    try:
        return onnx.session(model)
    except Exception as exc:  # onnxruntime raises its own classes for every kind of bad file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelInstallError(
            f"{model} is not a model ONNX Runtime can load ({first[:300]})"
        ) from None


def _check_input(session: Any, card: Card, model: Path) -> None:
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise ModelInstallError(f"{model} takes {len(inputs)} inputs; a recogniser takes one")
    shape = list(inputs[0].shape)
    if len(shape) != 4:
        raise ModelInstallError(
            f"{model} takes an input of shape {shape}; a batch of images has 4 axes"
        )
    expected = (
        [None, card.input_size, card.input_size, 3]
        if card.layout == Layout.NHWC
        else [None, 3, card.input_size, card.input_size]
    )
    for got, want in zip(shape, expected, strict=True):
        if want is not None and isinstance(got, int) and got != want:
            said = ["batch", *expected[1:]]
            raise ModelInstallError(
                f"{model} takes input of shape {shape}; the card's layout "
                f"{card.layout.value} and input_size {card.input_size} mean {said}. "
                "Correct the card's layout or input_size."
            )


def _embed_celebrities(
    session: Any, card: Card, settings: Settings
) -> tuple[np.ndarray, np.ndarray]:
    """Run the model on every face of the celebrity photos; return unit vectors and owners."""
    analyzer = FaceAnalyzer(settings)
    analyzer.ensure_models()
    celebrities = celebrity_dataset(settings.cache_dir)
    people = photos(celebrities / "train")
    vectors, owners = [], []
    for person, (_, files) in enumerate(sorted(people.items())):
        for path in files[:6]:
            data = path.read_bytes()
            bgr = decode_image(data, NO_CAP, NO_CAP).bgr
            found = analyzer.detector.detect(bgr)
            if not found:
                continue
            face = max(found, key=lambda d: d.box.w * d.box.h)
            out = np.asarray(onnx.run(session, CardChip(card)(bgr, face, {}))[0], np.float32)
            views = out.reshape(len(out), -1)
            if views.shape[1] != card.dimension:
                raise ModelInstallError(
                    f"the model gives {views.shape[1]} values per face; the card says "
                    f"{card.dimension}. Correct the card's dimension."
                )
            if not np.isfinite(views).all():
                raise ModelInstallError("the model gave values that are not finite numbers")
            vectors.append(average_views(views, [len(views)])[0])
            owners.append(person)
    if len(set(owners)) < 2:
        raise ModelInstallError("the celebrity photos gave too few faces to check the model")
    return np.asarray(vectors, np.float32), np.asarray(owners)


def _pairs(vectors: np.ndarray, owners: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of faces once: its cosine, and whether both faces are one person's."""
    upper = np.triu_indices(len(owners), 1)
    same = (owners[:, None] == owners[None, :])[upper]
    return np.asarray((vectors @ vectors.T)[upper]), np.asarray(same)


def _measure(card: Card, vectors: np.ndarray, owners: np.ndarray) -> Checked:
    pairs, same = _pairs(vectors, owners)
    if float(np.ptp(pairs)) < 1e-4:
        raise ModelInstallError("the model gives every face the same values: not a recogniser")
    scores = vectors @ vectors.T
    np.fill_diagonal(scores, -2.0)
    rank1 = float((owners[scores.argmax(axis=1)] == owners).mean())
    return Checked(
        faces=len(owners),
        persons=len(set(owners.tolist())),
        same_median=round(float(np.median(pairs[same])), 4),
        stranger_median=round(float(np.median(pairs[~same])), 4),
        rank1=round(rank1, 4),
        estimated=card.match_threshold is None or card.candidate_threshold is None,
    )


def _install(card: Card, model: Path, target: Path) -> None:
    """Copy the model and write the card in a folder beside ``target``, then rename it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{card.name}-", dir=target.parent))
    try:
        shutil.copyfile(model, staging / card.file)
        if sha256_file(staging / card.file) != card.sha256:
            raise ModelInstallError(f"{model} changed while it was being copied; try again")
        (staging / CARD_FILE).write_text(json.dumps(card.as_dict(), indent=2) + "\n")
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise

"""Operator-supplied recognisers: an ONNX model file described by a small card.

A unit that licenses a stronger model adds it with `facedb models add CARD.json`; it then
serves through the same recipe mechanism as the built-in ones (FACEDB_RECIPE names it, and
`facedb reindex --re-embed` moves a database to it). A card (JSON, beside the model file):

    {
      "name": "my-recogniser",          lower-case letters, digits and dashes
      "file": "model.onnx",             relative to the card
      "sha256": "…",                    of the model file
      "input_size": 112,                the square chip's side in pixels
      "layout": "nhwc" | "nchw",        where the colour channels sit in the input
      "colour": "rgb" | "bgr",
      "normalisation": "prewhiten" | "unit" | "symmetric",
                                        per-chip zero mean and unit deviation (FaceNet);
                                        x / 255; (x - 127.5) / 127.5 (ArcFace family)
      "alignment": "box" | "arcface-112",
                                        the detector's box with a margin, made square and
                                        turned so the eyes are level (FaceNet-style); or the
                                        eyes placed where ArcFace's 112x112 template has them
      "margin": 0.1,                    "box" only: share of the box added around it
      "mirror": true,                   also embed the mirrored chip and average the two
      "dimension": 512,                 values per face the model outputs
      "licence": "…",                   who may use it, on what terms (shown, never checked)
      "match_threshold": 0.4,           optional: its score at FAR 1e-4 on your photos
      "candidate_threshold": 0.1        optional: its score at FAR 10%
    }

The ArcFace alignment uses the two eye centres only (a similarity transform onto the
template's eyes): the detector's nose and mouth points are not stored, and re-embedding
works from stored detections.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from facedb.domain import Alignment, Colour, Layout, Normalisation
from facedb.errors import ModelInstallError

log = logging.getLogger(__name__)

CARD_FILE = "card.json"
_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")


@dataclass(frozen=True)
class Card:
    """What FaceDB needs to know to run a recogniser it did not ship."""

    name: str
    file: str
    sha256: str
    input_size: int
    layout: Layout
    colour: Colour
    normalisation: Normalisation
    alignment: Alignment
    dimension: int
    licence: str
    margin: float = 0.1
    mirror: bool = True
    match_threshold: float | None = None
    candidate_threshold: float | None = None

    @classmethod
    def read(cls, path: Path) -> Card:
        """Return the card at ``path``; a ModelInstallError names what is wrong with it."""
        try:
            raw = json.loads(path.read_text())
        except OSError as exc:
            raise ModelInstallError(f"cannot read the card {path}: {exc.strerror}") from None
        except ValueError as exc:
            raise ModelInstallError(f"the card {path} is not JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise ModelInstallError(f"the card {path} must be a JSON object")
        return cls.parse(raw, str(path))

    @classmethod
    def parse(cls, raw: dict[str, Any], where: str) -> Card:
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise ModelInstallError(f"{where}: unknown field {unknown[0]!r}")
        missing = [n for n in ("name", "file", "sha256", "input_size", "layout", "colour",
                               "normalisation", "alignment", "dimension", "licence")
                   if n not in raw]  # fmt: skip
        if missing:
            raise ModelInstallError(f"{where}: the card lacks {', '.join(missing)}")
        values: dict[str, Any] = dict(raw)
        choices: dict[str, type[StrEnum]] = {
            "layout": Layout,
            "colour": Colour,
            "normalisation": Normalisation,
            "alignment": Alignment,
        }
        for name, kind in choices.items():
            try:
                values[name] = kind(raw[name])
            except ValueError:
                allowed = ", ".join(repr(k.value) for k in kind)
                raise ModelInstallError(
                    f"{where}: {name} {raw[name]!r} is not one of {allowed}"
                ) from None
        card = cls(**values)
        card.check(where)
        return card

    def check(self, where: str) -> None:
        """Raise a ModelInstallError naming the first field with an impossible value."""
        problems = [
            (not isinstance(self.name, str) or not _NAME.fullmatch(self.name),
             "name must be 1-40 lower-case letters, digits or dashes"),
            (not isinstance(self.file, str) or not self.file or "/" in self.file
             or self.file.startswith("."), "file must name a file beside the card"),
            (not isinstance(self.sha256, str) or not re.fullmatch(r"[0-9a-f]{64}", self.sha256),
             "sha256 must be 64 lower-case hex digits"),
            (not _whole(self.input_size, 16, 1024), "input_size must be a whole number, 16-1024"),
            (not _whole(self.dimension, 2, 8192), "dimension must be a whole number, 2-8192"),
            (not isinstance(self.licence, str) or not self.licence.strip(),
             "licence must say who may use the model, on what terms"),
            (not isinstance(self.margin, (int, float)) or not 0.0 <= self.margin <= 1.0,
             "margin must lie between 0 and 1"),
            (not isinstance(self.mirror, bool), "mirror must be true or false"),
            (self.alignment == Alignment.ARCFACE and self.input_size != 112,
             "alignment arcface-112 needs input_size 112"),
            *[(v is not None and (not isinstance(v, (int, float)) or not -1.0 <= v <= 1.0),
               f"{n} must lie between -1 and 1")
              for n, v in (("match_threshold", self.match_threshold),
                           ("candidate_threshold", self.candidate_threshold))],
        ]  # fmt: skip
        for bad, message in problems:
            if bad:
                raise ModelInstallError(f"{where}: {message}")

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _whole(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


# --- installed recognisers ------------------------------------------------------------------
def recognisers_dir(model_dir: Path) -> Path:
    """Return the folder holding one folder per installed recogniser (card + model)."""
    return model_dir / "recognisers"


@dataclass(frozen=True)
class Installed:
    card: Card
    model: Path


def installed(model_dir: Path) -> list[Installed]:
    """Return the recognisers `facedb models add` installed (a broken one is logged, left out)."""
    found = []
    folder = recognisers_dir(model_dir)
    for card_path in sorted(folder.glob(f"*/{CARD_FILE}")) if folder.is_dir() else []:
        try:
            card = Card.read(card_path)
        except ModelInstallError as exc:
            log.warning("installed recogniser left out: %s", exc.message)
            continue
        model = card_path.parent / card.file
        if not model.is_file():
            log.warning("installed recogniser %s left out: %s is missing", card.name, model)
            continue
        found.append(Installed(card, model))
    return found

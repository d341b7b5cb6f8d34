"""The dev sets as typed loaders, and the one ``--devsets`` argument every bench takes.

They live outside the repository (``../shared/devsets``, README there; LAG's photos and the
UTKFace strangers fetched apart): research data to measure with, never to ship.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from facedb.models.sample_data import photos

DEVSETS = Path("../shared/devsets")
LAG_PIC = Path("/work/devdata/lag/FaceDetection/FaceDetection/data/Pic")  # fetched (README)
STRANGERS = Path("/work/devdata/utk-strangers")  # data/UTKFace/unlabeled, fetched (README)
CACHE = Path("/work/devdata/cache")  # embeddings, kept outside the repository


def add_devsets(parser: argparse.ArgumentParser, lag: bool = False, cache: bool = False) -> None:
    """Add --devsets (and --lag, --cache where the bench reads them)."""
    parser.add_argument("--devsets", type=Path, default=DEVSETS, help="the dev sets' folder")
    if lag:
        parser.add_argument("--lag", type=Path, default=LAG_PIC, help="LAG's Pic folder")
    if cache:
        parser.add_argument("--cache", type=Path, default=CACHE, help="embeddings cache (outside)")


@dataclass(frozen=True)
class LfwDev:
    """lfw-dev: 100 people with 5 photos each, and 400 single-photo distractors."""

    people: dict[str, list[Path]]
    distractors: list[Path]

    @property
    def paths(self) -> list[Path]:
        """Every photo: the people's (by name, then file), then the distractors."""
        return [p for n in sorted(self.people) for p in self.people[n]] + self.distractors


def lfw_dev(devsets: Path) -> LfwDev:
    folder = devsets / "lfw-dev"
    distractors = sorted(p for p in (folder / "distractors").iterdir() if p.suffix == ".jpg")
    return LfwDev(photos(folder / "people"), distractors)


@dataclass(frozen=True)
class UtkFace:
    """A UTKFace crop and the labels its name carries (``AGE_GENDER_RACE_DATE…``)."""

    path: Path
    age: int
    female: bool
    race: int  # 0 White, 1 Black, 2 Asian, 3 Indian, 4 Others

    @classmethod
    def named(cls, path: Path) -> UtkFace | None:
        """The labels of one file name (None where the name lacks them)."""
        parts = path.name.split("_")
        try:
            return cls(path, int(parts[0]), parts[1] == "1", int(parts[2]))
        except (IndexError, ValueError):
            return None


def odd_day(face: UtkFace) -> bool:
    """Whether the photo's capture day (in its name) is odd: the split of
    bench.attributes_held_out and bench.gender_candidates (UTKFace was gathered by day)."""
    return int(face.path.name.split("_")[3][6:8]) % 2 == 1


def utk_dev_paths(devsets: Path) -> list[Path]:
    """utk-dev's 598 crops, by name."""
    return sorted((devsets / "utk-dev").glob("*.jpg"))


def utk_dev(devsets: Path) -> list[UtkFace]:
    """utk-dev's crops with their labels."""
    return [f for p in utk_dev_paths(devsets) if (f := UtkFace.named(p)) is not None]


def utk_strangers(devsets: Path, folder: Path = STRANGERS) -> list[UtkFace]:
    """The strangers the list names (``utk-strangers-dev.txt``), in ``folder``."""
    names = (devsets / "utk-strangers-dev.txt").read_text().split()
    return [f for n in names if (f := UtkFace.named(folder / n)) is not None]


def lag_dev_ids(devsets: Path) -> list[str]:
    """The 300 LAG identities lag-dev uses."""
    return [x.strip() for x in (devsets / "lag-dev-ids.txt").read_text().splitlines() if x.strip()]


@dataclass(frozen=True)
class LagDev:
    """lag-dev laid out: childhood photos and adult photos, each with its person's number."""

    young: list[Path]
    young_owner: list[int]
    adult: list[Path]
    adult_owner: list[int]


def lag_dev(lag: Path, ids: list[str]) -> LagDev:
    """Each identity's childhood photos (``<name>/y/*``) and adult photos (``<name>/*``)."""
    out = LagDev([], [], [], [])
    adults = photos(lag)
    for person, name in enumerate(ids):
        kids, grown = photos(lag / name).get("y", []), adults.get(name, [])
        out.young.extend(kids)
        out.young_owner.extend([person] * len(kids))
        out.adult.extend(grown)
        out.adult_owner.extend([person] * len(grown))
    return out

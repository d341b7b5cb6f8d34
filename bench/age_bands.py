"""Calibrate the age check's bands on utk-dev, and measure how often it errs on true ages.

Run: .venv/bin/python -m bench.age_bands [--devsets ../shared/devsets] [--bands] [--write]

Every utk-dev crop goes through the service's pipeline (the largest face); its true age and
gender come from the file name. The age check compares an expected age with the face's
estimated age through r = log((1 + estimated) / (1 + expected)); per age group the bands
are r's median and 5th/95th percentiles, and the far limit is the largest normalised
distance seen in the calibration faces (``facedb/agecheck.py`` explains the
verdicts). Measured with 2-fold cross-fitting (calibrate on one half of the files, judge the
other, both ways): the share of faces, whose true age is declared, judged `impossible` and
`unlikely`, with Wilson 95% intervals. Also: how often a confident gender estimate is wrong,
by the face's estimated age (the gender flag of the review queue uses it).

--bands writes facedb/age_bands.json, calibrated on the whole set; --write puts
the tables into bench/RESULTS.md.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from bench.common import arguments, report, table
from bench.datasets import add_devsets
from facedb.agecheck import BANDS_FILE, GROUP_STARTS, AgeBands, AgeCheck, fit_bands
from facedb.config import Settings
from facedb.domain import AgeVerdict, EstimatedGender
from facedb.evaluation.metrics import wilson
from facedb.pipeline.analyzer import FaceAnalyzer

SECTION = "## Age check: bands calibrated on utk-dev"


@dataclass(frozen=True)
class Labelled:
    name: str
    age: int
    female: bool
    estimated_age: float
    gender: EstimatedGender

    @property
    def half(self) -> int:
        return int(hashlib.sha256(self.name.encode()).hexdigest(), 16) % 2


def analysed(root: Path) -> tuple[list[Labelled], int]:
    """Return the labelled faces the pipeline found, and how many crops there were."""
    analyzer = FaceAnalyzer(Settings())
    analyzer.load()
    out, crops = [], sorted(root.glob("*.jpg"))
    for path in crops:
        age, gender = path.name.split("_")[:2]
        faces = analyzer.analyze(path.read_bytes())
        if not faces:
            continue
        face = max(faces, key=lambda f: f.box.w * f.box.h)
        if face.age is None or face.gender is None:
            continue
        out.append(Labelled(path.name, int(age), gender == "1", face.age, face.gender))
    return out, len(crops)


def verdicts(bands: AgeBands, faces: list[Labelled]) -> list[AgeCheck]:
    return [bands.check(f.age, f.estimated_age) for f in faces]


def share(count: int, total: int) -> str:
    low, high = wilson(count, total)
    return f"{count} / {total} = {100 * count / total:.2f}% [{100 * low:.2f}, {100 * high:.2f}]"


def main() -> None:
    parser = arguments(__doc__)
    add_devsets(parser)
    parser.add_argument("--bands", action="store_true", help="write the packaged bands file")
    args = parser.parse_args()
    faces, crops = analysed(args.devsets / "utk-dev")

    judged: list[tuple[Labelled, AgeCheck]] = []
    for half in (0, 1):
        bands = fit_bands([(f.age, f.estimated_age) for f in faces if f.half == half])
        judged += [(f, c) for f, c in zip(faces, verdicts(bands, faces), strict=True)
                   if f.half != half]  # fmt: skip
    groups = [*GROUP_STARTS, None]
    rows = []
    for start, end in pairwise(groups):
        assert start is not None  # only the last group is open-ended
        here = [(f, c) for f, c in judged if f.age >= start and (end is None or f.age < end)]
        rows.append([f"{start}–{end if end is not None else ''}", str(len(here)),
                     str(sum(c.verdict is AgeVerdict.IMPOSSIBLE for _, c in here)),
                     str(sum(c.verdict is AgeVerdict.UNLIKELY for _, c in here))])  # fmt: skip
    impossible = sum(c.verdict is AgeVerdict.IMPOSSIBLE for _, c in judged)
    unlikely = sum(c.verdict is AgeVerdict.UNLIKELY for _, c in judged)
    examples = [f"true {f.age}, read {f.estimated_age:.0f}" for f, c in judged
                if c.verdict is AgeVerdict.IMPOSSIBLE]  # fmt: skip

    gender_rows = []
    for low, high in ((0, 13), (13, 200)):
        ages = [face for face in faces if low <= face.estimated_age < high]
        answered = [face for face in ages if face.gender is not EstimatedGender.UNKNOWN]
        wrong = sum((face.gender is EstimatedGender.FEMALE) != face.female for face in answered)
        gender_rows.append([f"{low}–{high if high < 200 else ''}", str(len(ages)),
                            str(len(answered)), share(wrong, max(len(answered), 1))])  # fmt: skip

    full = fit_bands([(f.age, f.estimated_age) for f in faces])
    if args.bands:
        BANDS_FILE.write_text(json.dumps(full.as_dict(), indent=2) + "\n")
    lines = [
        SECTION, "",
        "Command: `.venv/bin/python -m bench.age_bands --write` (`--bands` also rewrites "
        "`facedb/age_bands.json`). utk-dev: "
        f"{len(faces)} of {crops} crops with a face found. 2-fold cross-fitting: each half's "
        "faces judged by bands calibrated on the other half; the expected age is the true age.",
        "",
        f"- judged `impossible`: {share(impossible, len(judged))} (the gate's limit is 1%)",
        f"- judged `unlikely`: {share(unlikely, len(judged))} (outside the 90% band, by "
        "design about 10%)",
        f"- the faces judged impossible: {'; '.join(examples) or 'none'}",
        "", *table(["true age", "faces", "impossible", "unlikely"], rows), "",
        "Confident gender estimates (not `unknown` at FACEDB_GENDER_MIN_PROBABILITY) that are "
        "wrong, by the face's estimated age:", "",
        *table(["estimated age", "faces", "answered", "wrong (Wilson 95%)"], gender_rows), "",
        "Shipped bands (whole set): far limit "
        f"{full.far:.2f} band-widths; per group [start, median r, 5th, 95th percentile of r]: "
        + "; ".join(f"{g.start}: {g.median:.2f}, {g.low:.2f}, {g.high:.2f}" for g in full.groups),
    ]  # fmt: skip
    report("\n".join(lines) + "\n", SECTION, args.write)


if __name__ == "__main__":
    main()

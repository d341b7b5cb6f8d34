"""Cross-age search at the size of a real register: lag-dev's childhood photos enrolled among
N UTKFace strangers of every age, lag-dev's adult photos searched.

Run: .venv/bin/python -m bench.register_scale [--devsets DIR] [--lag DIR] [--strangers DIR]
     [--most N] [--cache DIR] [--write]

Every photo goes through the service's networks once (``bench.embeddings``, cached outside
the repository: 11k strangers take about 40 minutes of this CPU once). A person is scored by
their best childhood photo; a stranger is one photo. The first N strangers of one fixed
shuffle make the register of size N, so every size is a subset of the next. Ranks are over
the 300 lag-dev persons plus N strangers; 95% intervals by bootstrap over the searches.

- Fusions: each network alone, the served equal weights, and weights chosen at the largest
  size on one half of the lag-dev persons (by rank-10) and judged on the other half.
- The age axis as the service learns it (``AxisLearner`` and ``AxisGuard`` on the register's
  faces: the childhood photos and the strangers, with their estimated ages) and removes it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from bench.common import arguments, report, table
from bench.datasets import STRANGERS, add_devsets, lag_dev, lag_dev_ids, lfw_dev, utk_strangers
from bench.embeddings import Embedded, embedded, embedded_in_chunks
from bench.scoring import Fusion, cosines, lfw_row, lfw_searches
from facedb.config import Settings
from facedb.evaluation import metrics
from facedb.pipeline.age_axis import AxisGuard, AxisLearner, remove_axis
from facedb.pipeline.analyzer import FaceAnalyzer
from facedb.pipeline.recipes import BUILT_IN
from facedb.pipeline.vectors import join_parts

SECTION = "## Register scale: a child among thousands of strangers"
SIZES = (0, 1000, 3000, 5000, 11325)
NETWORKS = ("facenet", "dlib", "sface")
BOOT = 1000
Vectors = NDArray[np.float32]


@dataclass(frozen=True)
class Cosines:
    """Each network's adult-probe x childhood-photo and adult-probe x stranger cosines."""

    young: dict[str, NDArray[np.float64]]
    strangers: dict[str, NDArray[np.float64]]

    def fused(
        self, weights: tuple[float, float, float]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        young = sum(w * self.young[n] for w, n in zip(weights, NETWORKS, strict=True))
        strangers = sum(w * self.strangers[n] for w, n in zip(weights, NETWORKS, strict=True))
        return np.asarray(young), np.asarray(strangers)


def cosines_of(adult: Embedded, young: Embedded, strangers: Embedded) -> Cosines:
    return Cosines({n: cosines(getattr(adult, n), getattr(young, n)) for n in NETWORKS},
                   {n: cosines(getattr(adult, n), getattr(strangers, n)) for n in NETWORKS})  # fmt: skip


def ranks(young_scores: NDArray[np.float64], stranger_scores: NDArray[np.float64],
          young_owner: NDArray[np.int64], adult_owner: NDArray[np.int64], size: int,
          persons: NDArray[np.int64] | None = None) -> NDArray[np.int64]:  # fmt: skip
    """Each adult search's rank of its own person among the lag-dev persons (``persons``
    only, if given) and the first ``size`` strangers; 0 where the probe showed no face."""
    keep = np.ones(len(adult_owner), bool) if persons is None else np.isin(adult_owner, persons)
    owners = np.unique(young_owner) if persons is None else np.asarray(persons)
    per = np.stack([young_scores[:, young_owner == p].max(axis=1) for p in owners], axis=1)
    column = {int(p): i for i, p in enumerate(owners)}
    rows = np.where(keep)[0]
    mate = per[rows, [column[int(adult_owner[r])] for r in rows]]
    above = (per[rows] > mate[:, None]).sum(axis=1)
    above += (stranger_scores[rows, :size] > mate[:, None]).sum(axis=1)
    found = mate > -1.0
    return np.where(found, above + 1, 0).astype(np.int64)


def cells(r: NDArray[np.int64], rng: np.random.Generator) -> list[str]:
    out = []
    for k in (1, 10, 50):
        e = metrics.with_interval(lambda i, k=k: metrics.rank_rate(r[i], k), len(r), BOOT, rng)
        out.append(f"{e['value']:.3f} [{e['low']:.3f}, {e['high']:.3f}]")
    return out


def without_axis(
    parts: dict[str, Embedded], ages: NDArray[np.float64]
) -> tuple[dict[str, Embedded], str]:
    """The embeddings with the age axis the service would learn from the register removed
    (childhood photos and strangers, with their estimated ages), and what was kept."""
    recipe = BUILT_IN["facenet+dlib+sface"]
    weights = [p.weight for p in recipe.parts]
    register = np.concatenate([join_parts([getattr(parts[k], n) for n in NETWORKS], weights)
                               for k in ("young", "strangers")])  # fmt: skip
    learner = AxisLearner(recipe)
    keep = ~np.isnan(register[:, 0])
    learner.add(register[keep].astype(np.float32), ages[keep])
    axis = AxisGuard().keep(learner.learned())
    out = {}
    for key, e in parts.items():
        facenet, dlib, sface = remove_axis(axis, [getattr(e, n) for n in NETWORKS])
        out[key] = Embedded(facenet, dlib, e.age, e.dlib_mirror, sface)
    said = ", ".join(f"{n} |r| {r:.2f}{'' if u.any() else ' (kept)'}"
                     for n, r, u in zip(NETWORKS, axis.age_correlations, axis.directions, strict=True))  # fmt: skip
    return out, f"learned from {axis.aged_faces} faces ({axis.children} children): {said}"


def paired(new: NDArray[np.int64], base: NDArray[np.int64]) -> list[str]:
    """new minus base at rank-1/10/50 on the same searches, with a 95% bootstrap interval."""
    rng, out = np.random.default_rng(0), []
    draws = [rng.integers(0, len(new), len(new)) for _ in range(BOOT)]
    for k in (1, 10, 50):
        diff = [metrics.rank_rate(new[i], k) - metrics.rank_rate(base[i], k) for i in draws]
        point = metrics.rank_rate(new, k) - metrics.rank_rate(base, k)
        low, high = np.percentile(diff, [2.5, 97.5])
        out.append(f"{point:+.3f} [{low:+.3f}, {high:+.3f}]")
    return out


def as_fusion(w: tuple[float, float, float]) -> Fusion:
    """The weights as the recogniser bench's fusion (FaceNet's share of FaceNet + dlib, SFace)."""
    return Fusion("", w[0] / (w[0] + w[1]) if w[0] + w[1] else 0.0, sface=w[2])


def chosen_weights(c: Cosines, yo: NDArray[np.int64], ao: NDArray[np.int64], size: int,
                   persons: NDArray[np.int64]) -> tuple[float, float, float]:  # fmt: skip
    """The weights (steps of 0.1) with the best rank-10 among ``persons`` at ``size``."""
    grid = [(a / 10, b / 10, (10 - a - b) / 10) for a, b in itertools.product(range(11), repeat=2)
            if a + b <= 10]  # fmt: skip

    def score(w: tuple[float, float, float]) -> float:
        y, s = c.fused(w)
        return metrics.rank_rate(ranks(y, s, yo, ao, size, persons), 10)

    return max(grid, key=score)


def main() -> None:
    parser = arguments(__doc__)
    add_devsets(parser, lag=True, cache=True)
    parser.add_argument(
        "--strangers", type=Path, default=STRANGERS, help="UTKFace's unlabeled folder"
    )
    parser.add_argument("--most", type=int, default=None, help="read only this many strangers")
    args = parser.parse_args()
    analyzer = FaceAnalyzer(Settings())
    lag = lag_dev(args.lag, lag_dev_ids(args.devsets))
    faces = utk_strangers(args.devsets, args.strangers)
    order = np.random.default_rng(5).permutation(len(faces))
    stranger_paths = [faces[i].path for i in order][: args.most]
    parts = {"young": embedded("lag-young", lag.young, analyzer, args.cache),
             "adult": embedded("lag-adult", lag.adult, analyzer, args.cache),
             "strangers": embedded_in_chunks("utk-strangers", stranger_paths, analyzer,
                                             args.cache)}  # fmt: skip
    yo, ao = np.array(lag.young_owner), np.array(lag.adult_owner)
    sizes = [s for s in SIZES if s <= len(stranger_paths)]
    halves = np.random.default_rng(9).permutation(int(yo.max()) + 1)
    choose, judge = np.sort(halves[::2]), np.sort(halves[1::2])
    ages = np.concatenate([parts["young"].age, parts["strangers"].age]).astype(np.float64)
    axisless, axis_said = without_axis(parts, ages)
    lines = [SECTION, "", f"`python -m bench.register_scale` (see its docstring): {int(yo.max()) + 1} "
             f"lag-dev persons ({len(lag.young)} childhood photos enrolled, {len(lag.adult)} adult "
             f"photos searched) among N of {len(stranger_paths)} UTKFace strangers. Age axis: {axis_said}.", ""]  # fmt: skip
    rows, judged = [], []
    chosen_served = (1 / 3, 1 / 3, 1 / 3)
    for label, embs in (("as served", parts), ("age axis removed", axisless)):
        c = cosines_of(embs["adult"], embs["young"], embs["strangers"])
        weights = chosen_weights(c, yo, ao, sizes[-1], choose)
        fusions = {"FaceNet": (1.0, 0.0, 0.0), "dlib": (0.0, 1.0, 0.0), "SFace": (0.0, 0.0, 1.0),
                   "equal (served)": (1 / 3, 1 / 3, 1 / 3),
                   f"chosen {weights[0]:.1f}/{weights[1]:.1f}/{weights[2]:.1f}": weights}  # fmt: skip
        for name, w in fusions.items():
            y, s = c.fused(w)
            for size in sizes:
                r = ranks(y, s, yo, ao, size)
                rows.append([label, name, f"{size:,}", *cells(r, np.random.default_rng(0))])
        held = {}
        for name, w in (("equal (served)", fusions["equal (served)"]), ("chosen", weights)):
            y, s = c.fused(w)
            held[name] = ranks(y, s, yo, ao, sizes[-1], judge)
            judged.append([label, name, *cells(held[name], np.random.default_rng(0))])
        judged.append([label, "chosen − equal (paired)",
                       *paired(held["chosen"], held["equal (served)"])])  # fmt: skip
        if label == "as served":
            chosen_served = weights
    lines += table(["embeddings", "fusion", "strangers", "rank-1", "rank-10", "rank-50"], rows)
    lines += ["", f"Judged on the other {len(judge)} persons at {sizes[-1]:,} strangers (weights "
              f"chosen on {len(choose)}):", ""]  # fmt: skip
    lines += table(["embeddings", "fusion", "rank-1", "rank-10", "rank-50"], judged)
    lfw = lfw_dev(args.devsets)
    emb = embedded("lfw-dev", lfw.paths, analyzer, args.cache)
    index = {path: i for i, path in enumerate(lfw.paths)}
    open_set = [lfw_row(name, *lfw_searches(lfw.people, lfw.distractors, emb, index, as_fusion(w)))
                for name, w in (("equal (served)", (1 / 3, 1 / 3, 1 / 3)),
                                ("chosen (as served)", chosen_served))]  # fmt: skip
    lines += ["", "Open-set lfw-dev (as `facedb eval --distractors` measures it):", ""]
    lines += table(["fusion", "rank-1", "FNIR @ FPIR 1%"], open_set)
    report("\n".join(lines) + "\n", SECTION, args.write)


if __name__ == "__main__":
    main()

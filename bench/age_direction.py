"""The age direction in the embeddings: removing it, measured on cross-age LAG and lfw-dev.

Run: .venv/bin/python -m bench.age_direction [--devsets ../shared/devsets] [--lag DIR] [--write]

What chose ``facedb reindex --remove-age-axis`` (facedb/pipeline/age_axis.py). A face's
embedding mixes who it is with how old it looks; between a childhood and an adult photo the
second part works against the match. Remove one direction ``u`` from each model's unit
embeddings (``x - (x . u) u``, renormalised) and search again:

- ``utk-dev ages``: the direction along which utk-dev's age-band means spread most (its
  labelled ages; between-band scatter, bands 0-12, 13-19, 20-39, 40-59, 60+);
- ``PC1 of utk-dev``, ``PC1 of the LAG gallery``, ``PC1 of lfw-dev``: the first principal
  component of a population's embeddings, no labels used. The LAG gallery (the childhood
  photos enrolled, never the searches) is what a service could learn from its own faces;
  the LAG gallery and searches together, what a database holding both registers (children
  reported missing, adults found) could learn, still without a label; lfw-dev is a
  population of adults only;
- ``the service's rule``: what ``facedb reindex --remove-age-axis`` keeps of those first
  components (``AxisGuard``): a model's only where the faces' positions along it follow
  their estimated ages, else that model unchanged.

The embeddings are bench.recognisers' cache (computed on first use); the protocols,
folds and intervals are that bench's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from bench.common import arguments, report, table, unit
from bench.datasets import add_devsets, lag_dev, lag_dev_ids, lfw_dev, utk_dev, utk_dev_paths
from bench.embeddings import Embedded
from bench.embeddings import embedded as embedded_through
from bench.scoring import BOOT, Fusion, lag_ranks, lfw_row, lfw_searches, rank_cells
from facedb.config import Settings
from facedb.evaluation import metrics
from facedb.pipeline.age_axis import (
    ADULTHOOD_STARTS,
    CHILDHOOD_ENDS,
    AxisGuard,
    AxisLearner,
)
from facedb.pipeline.analyzer import FaceAnalyzer
from facedb.pipeline.recipes import BUILT_IN, Recipe
from facedb.pipeline.vectors import join_parts
from facedb.records import AgeAxis

SECTION = "## Age direction: removing it from the embeddings"
FUSED = BUILT_IN["facenet+dlib"]
TRIPLE = BUILT_IN["facenet+dlib+sface"]
AGE_BANDS = (13, 20, 40, 60)
Vectors = NDArray[np.float32]


def learned(recipe: Recipe, embedded: list[Embedded]) -> AgeAxis:
    """What `facedb reindex --remove-age-axis` learns from these faces (the rows that hold
    one), as ``recipe``'s parts: each network's first principal component, with how the
    faces' positions along it follow their estimated ages."""
    learner = AxisLearner(recipe)
    for e in embedded:
        keep = ~np.isnan(e.facenet[:, 0])
        parts = [getattr(e, network)[keep] for network in recipe.networks]
        learner.add(join_parts(parts, [p.weight for p in recipe.parts]), e.age[keep])
    return learner.learned()


def age_axis(x: Vectors, ages: NDArray[np.int64]) -> Vectors:
    """The direction along which the age bands' mean embeddings spread most."""
    keep = ~np.isnan(x[:, 0])
    x, band = x[keep], np.digitize(ages[keep], AGE_BANDS)
    centre = x.mean(axis=0)
    scatter = np.zeros((x.shape[1], x.shape[1]))
    for b in np.unique(band):
        d = x[band == b].mean(axis=0) - centre
        scatter += (band == b).sum() * np.outer(d, d)
    return np.asarray(np.linalg.eigh(scatter)[1][:, -1], np.float32)


def without(e: Embedded, axes: tuple[Vectors, ...]) -> Embedded:
    """The embeddings with each network's axis removed (renormalised), in the order FaceNet,
    dlib, SFace; a network without an axis given keeps its vectors."""

    def drop(x: Vectors, axis: Vectors) -> Vectors:
        return unit(x - np.outer(x @ axis, axis))

    networks = ("facenet", "dlib", "sface")
    return replace(e, **{n: drop(getattr(e, n), u) for n, u in zip(networks, axes, strict=False)})


def stranger_thresholds(e: Embedded, owner: NDArray[np.int64], weight: float) -> str:
    """The recipe's rule on lfw-dev: the scores 1 stranger pair in 10,000 and 1 in 10 reach."""
    scores = Fusion("", weight).scores(e, e, np.arange(len(owner)), np.arange(len(owner)))
    upper = np.triu_indices(len(owner), 1)
    strangers = scores[upper][owner[upper[0]] != owner[upper[1]]]
    found = [metrics.threshold_for_rate(strangers, far)[0] for far in (1e-4, 0.1)]
    return " / ".join(f"{t:.3f}" for t in found)


def paired(new: NDArray[np.int64], base: NDArray[np.int64], k: int) -> str:
    rng = np.random.default_rng(0)
    draws = [rng.integers(0, len(new), len(new)) for _ in range(BOOT)]
    d = [(new[i] <= k).mean() - (base[i] <= k).mean() for i in draws]
    point = (new <= k).mean() - (base <= k).mean()
    return f"{point:+.3f} [{np.quantile(d, 0.025):+.3f}, {np.quantile(d, 0.975):+.3f}]"


def main() -> None:
    parser = arguments(__doc__)
    add_devsets(parser, lag=True, cache=True)
    args = parser.parse_args()
    settings = Settings()
    analyzer = FaceAnalyzer(settings)

    def embedded(name: str, paths: list[Path]) -> Embedded:
        return embedded_through(name, paths, analyzer, args.cache)

    lfw = lfw_dev(args.devsets)
    people, distractors, lfw_paths = lfw.people, lfw.distractors, lfw.paths
    lfw_emb = embedded("lfw-dev", lfw_paths)
    ids = lag_dev_ids(args.devsets)
    lag = lag_dev(args.lag, ids)
    young, young_owner, adult, adult_owner = lag.young, lag.young_owner, lag.adult, lag.adult_owner
    young_emb, adult_emb = embedded("lag-young", young), embedded("lag-adult", adult)
    utk_paths = utk_dev_paths(args.devsets)
    utk_emb = embedded("utk-dev", utk_paths)
    utk_ages = np.array([f.age for f in utk_dev(args.devsets)])

    populations = {
        "PC1 of utk-dev": learned(FUSED, [utk_emb]),
        "PC1 of the LAG gallery": learned(FUSED, [young_emb]),
        "PC1 of the LAG gallery and searches": learned(FUSED, [young_emb, adult_emb]),
        "PC1 of lfw-dev": learned(FUSED, [lfw_emb]),
    }
    axes: dict[str, tuple[Vectors, ...]] = {
        "utk-dev ages": (age_axis(utk_emb.facenet, utk_ages), age_axis(utk_emb.dlib, utk_ages)),
        **{name: axis.directions for name, axis in populations.items()},
    }
    # What `facedb reindex --remove-age-axis` keeps (AxisGuard): each model's first component
    # only where it follows the faces' estimated ages; otherwise that model unchanged.
    guard = AxisGuard()
    for name in ("PC1 of the LAG gallery", "PC1 of the LAG gallery and searches"):
        service = name.replace("PC1 of the", "the service's rule,")
        axes[service] = guard.keep(populations[name]).directions
    age_fn, age_dl = axes["utk-dev ages"]
    cosines = [
        f"{name}: {abs(float(f @ age_fn)):.2f} / {abs(float(d @ age_dl)):.2f}"
        for name, (f, d) in axes.items()
        if name.startswith("PC1")
    ]
    dlib_r = ", ".join(
        f"{populations[name].age_correlations[1]:.2f}"
        for name in ("PC1 of the LAG gallery", "PC1 of the LAG gallery and searches")
    )
    owner_of = {p: n for n, name in enumerate(sorted(people)) for p in people[name]}
    lfw_owner = np.array([owner_of.get(p, len(people) + i) for i, p in enumerate(lfw_paths)])
    guard_rows = [
        ["none (as served)", "", "", stranger_thresholds(lfw_emb, lfw_owner, 1.0),
         stranger_thresholds(lfw_emb, lfw_owner, 0.5)]
    ]  # fmt: skip
    for name, axis in populations.items():
        changed = without(lfw_emb, axes[name])
        guard_rows.append([
            name,
            f"{axis.children / axis.aged_faces:.0%} / {axis.adults / axis.aged_faces:.0%}",
            f"{axis.age_correlations[0]:.2f}",
            stranger_thresholds(changed, lfw_owner, 1.0),
            stranger_thresholds(changed, lfw_owner, 0.5),
        ])  # fmt: skip
    yo, ao = np.array(young_owner), np.array(adult_owner)
    folds = np.random.default_rng(7).permutation(len(ids))
    index = {p: i for i, p in enumerate(lfw_paths)}
    variants: list[tuple[str, Callable[[Embedded], Embedded]]] = [("none (as served)", lambda e: e)]
    variants += [(name, lambda e, a=a: without(e, a)) for name, a in axes.items()]
    triple_axes = {
        "the service's rule, LAG gallery": guard.keep(learned(TRIPLE, [young_emb])),
        "the service's rule, LAG gallery and searches": guard.keep(
            learned(TRIPLE, [young_emb, adult_emb])
        ),
    }
    rows, diffs = [], []
    fusions = {
        "FaceNet": (Fusion("", 1.0), variants),
        "facenet+dlib": (Fusion("", 0.5), variants),
        "facenet+dlib+sface": (Fusion("", 0.5, sface=1 / 3), [variants[0]] + [
            (name, lambda e, a=a: without(e, a.directions)) for name, a in triple_axes.items()
        ]),
    }  # fmt: skip
    for recipe, (fusion, recipe_variants) in fusions.items():
        base: NDArray[np.int64] | None = None
        for name, change in recipe_variants:
            y, a, e = change(young_emb), change(adult_emb), change(lfw_emb)
            whole = lag_ranks(y, yo, a, ao, fusion)
            in_folds = np.concatenate(
                [lag_ranks(y, yo, a, ao, fusion, folds[f::3]) for f in range(3)]
            )
            lfw_cells = lfw_row("", *lfw_searches(people, distractors, e, index, fusion))[1:]
            rows.append([
                recipe, name, *rank_cells(whole, np.random.default_rng(0)),
                " / ".join(f"{(in_folds <= k).mean():.3f}" for k in (1, 5, 10)), *lfw_cells,
            ])  # fmt: skip
            if base is None:
                base = whole
            else:
                diffs.append([recipe, name, *(paired(whole, base, k) for k in (1, 5, 10))])
    text = "\n".join([
        SECTION, "",
        "`python -m bench.age_direction` (see its docstring): one direction removed from each "
        "model's embeddings. LAG: 300 identities, every childhood photo enrolled, every adult "
        "photo searched (95% bootstrap intervals), and in three folds of 100 (rank-1 / 5 / 10); "
        "lfw-dev open-set as `facedb eval` runs it.", "",
        "\n".join(table(["recipe", "direction removed", "LAG rank-1", "rank-5", "rank-10",
                         "LAG folds of 100", "lfw-dev rank-1", "FNIR @ FPIR 1%"], rows)), "",
        "**Paired against the same recipe as served** (LAG, the same searches; 95% paired "
        "bootstrap intervals)", "",
        "\n".join(table(["recipe", "direction removed", "rank-1", "rank-5", "rank-10"], diffs)),
        "",
        "facenet+dlib+sface: each network's |r| with the estimated ages ("
        + "; ".join(f"{name}: " + " / ".join(f"{r:.2f}" for r in axis.age_correlations)
                    for name, axis in triple_axes.items())
        + "; FaceNet / dlib / SFace), the networks whose component reaches "
        f"{AxisGuard().min_correlation} changed, the others kept.", "",
        "How close each first component lies to utk-dev's age axis (|cosine|, FaceNet / dlib): "
        + "; ".join(cosines) + ".", "",
        "**What a service could check, and what the thresholds become.** Children / adults: "
        f"the shares of faces estimated under {CHILDHOOD_ENDS} and {ADULTHOOD_STARTS} or "
        "over. |r|: how closely each face's position along FaceNet's first component follows "
        "its estimated age, in the population the component was learned from (a direction "
        "that follows age, not something else). Thresholds: the recipes' rule on lfw-dev with "
        "that direction removed (the score 1 stranger pair in 10,000 reaches / 1 in 10). "
        "\"The service's rule\": what `facedb reindex --remove-age-axis` keeps where both "
        f"shares reach {guard.min_share:.0%}: each model's first component where its |r| "
        f"reaches {guard.min_correlation} (dlib's does not on LAG: {dlib_r}), else that model "
        "unchanged.", "",
        "\n".join(table(["direction removed", "children / adults (estimated)",
                         "r with estimated age (absolute)",
                         "FaceNet thresholds", "facenet+dlib thresholds"], guard_rows)),
    ])  # fmt: skip
    report(text, SECTION, args.write)


if __name__ == "__main__":
    main()

"""Face image quality by error versus discard on the dev sets: which components, combined
how, say which comparisons will miss (docs/ACCURACY.md, "Face image quality").

Every photo's largest face goes through the service's pipeline once (the served recipe's
embedding, each quality component's value, and each ONNX network's agreement of the chip
with its mirror, a candidate the issue names); the arrays are cached outside the
repository. The unified rule (the minimum over a subset of components) is chosen on half
of each set's persons and judged on the other half, with intervals over persons.

    PYTHONPATH=. python -m bench.quality_explore --devsets ../shared/devsets [--write]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bench.common import arguments, report, table
from bench.datasets import add_devsets, lag_dev, lag_dev_ids, lfw_dev
from bench.embeddings import cached, largest_faces
from facedb.config import Settings
from facedb.domain import NetworkName
from facedb.domain import QualityComponent as C
from facedb.evaluation.discard import FRACTIONS, bootstrap, discard, threshold_at
from facedb.pipeline import quality
from facedb.pipeline.analyzer import FaceAnalyzer

COMPONENTS = list(C)
MIRRORED = (NetworkName.FACENET, NetworkName.SFACE)  # the parts whose views hold a mirror


def measure_all(paths: list[Path], analyzer: FaceAnalyzer) -> dict[str, NDArray[Any]]:
    """Each photo's largest face: its embedding, component values (NaN: none; the subject's
    age among them) and mirror agreement per mirrored network."""
    n = len(paths)
    vectors = np.full((n, analyzer.dimension), np.nan, np.float32)
    values = np.full((n, len(COMPONENTS)), np.nan)
    mirror = np.full((n, len(MIRRORED)), np.nan)
    parts = analyzer.recipe.networks
    for i, face, bgr in largest_faces(paths, analyzer, every=100):
        vectors[i] = analyzer.embed([face])[0].embedding
        age = face.attributes.age if face.attributes else None
        for c, v in quality.measure(bgr, face.detection, age).items():
            values[i, COMPONENTS.index(c)] = v
        for k, name in enumerate(MIRRORED):
            views = face.views[parts.index(name)]
            a, b = (analyzer.networks[name].embed([views[j : j + 1]])[0] for j in (0, 1))
            mirror[i, k] = float(a @ b)
    return {"vectors": vectors, "values": values, "mirror": mirror}


@dataclass(frozen=True)
class Comparisons:
    """One dev set's mated comparisons, judged at a fixed false-match rate."""

    label: str
    a: NDArray[np.int64]  # the two photos of each mated comparison
    b: NDArray[np.int64]
    missed: NDArray[np.bool_]
    person: NDArray[np.int64]
    threshold: float


def comparisons(
    label: str,
    vectors: NDArray[np.float32],
    owner: NDArray[np.int64],
    probe: NDArray[np.int64],
    gallery: NDArray[np.int64],
    fmr: float,
) -> Comparisons:
    """Every probe x gallery comparison of photos with a face (each pair once where the
    probes are the gallery)."""
    found = ~np.isnan(vectors[:, 0])
    probe, gallery = probe[found[probe]], gallery[found[gallery]]
    scores = vectors[probe].astype(np.float64) @ vectors[gallery].astype(np.float64).T
    same = owner[probe][:, None] == owner[gallery][None, :]
    once = probe[:, None] < gallery[None, :]
    if not np.array_equal(probe, gallery):
        once = np.ones_like(once)
    mated, nonmated = same & once, ~same & once
    threshold = threshold_at(scores[nonmated], fmr)
    pi, gi = np.nonzero(mated)
    return Comparisons(
        label, probe[pi], gallery[gi], scores[pi, gi] < threshold, owner[probe[pi]], threshold
    )


Rule = Callable[[NDArray[np.float64]], NDArray[np.float64]]  # face scores → unified


def ratio(cmp: Comparisons, face_q: NDArray[np.float64], persons: NDArray[np.bool_]) -> float:
    """The lowest-10% miss ratio of the comparisons of ``persons``."""
    keep = persons[cmp.person]
    q = np.minimum(face_q[cmp.a], face_q[cmp.b])[keep]
    return discard(cmp.missed[keep], q).lowest_ratio


def rules(names: list[str]) -> dict[str, Rule]:
    """The rules tried: each column alone, and ways to combine the capture components with
    the subject's age."""
    k = {n: i for i, n in enumerate(names)}
    capture = [k[c.value] for c in quality.CAPTURE]
    age = k[C.SUBJECT_AGE.value]

    def with_age(combine: Callable[[NDArray[np.float64]], NDArray[np.float64]]) -> Rule:
        return lambda s: np.fmin(np.nan_to_num(s[:, age], nan=100.0), combine(s[:, capture]))

    def floored(c: NDArray[np.float64]) -> NDArray[np.float64]:
        low = np.nanmin(c, axis=1)
        return np.where(low < quality.SEVERE, low, np.nanmean(c, axis=1))

    out: dict[str, Rule] = {n: (lambda s, i=i: s[:, i]) for n, i in k.items()}
    out["min of all"] = lambda s: np.nanmin(s, axis=1)
    out["mean of capture"] = lambda s: np.nanmean(s[:, capture], axis=1)
    out["age, min of capture"] = with_age(lambda c: np.nanmin(c, axis=1))
    out["age, mean of capture"] = with_age(lambda c: np.nanmean(c, axis=1))
    out["age, geometric mean of capture"] = with_age(
        lambda c: np.exp(np.nanmean(np.log(np.maximum(c, 1.0)), axis=1))
    )
    out["age, mean of capture floored (served)"] = with_age(floored)
    return out


def main() -> None:
    parser = arguments(__doc__)
    add_devsets(parser, lag=True, cache=True)
    args = parser.parse_args()
    analyzer = FaceAnalyzer(Settings())
    lfw = lfw_dev(args.devsets)
    lag = lag_dev(args.lag, lag_dev_ids(args.devsets))
    lfw_paths, lag_paths = lfw.paths, lag.young + lag.adult
    data = {
        name: cached(
            f"quality-{name}", paths, lambda p=paths: measure_all(p, analyzer), args.cache, "mirror"
        )
        for name, paths in (("lfw", lfw_paths), ("lag", lag_paths))
    }
    people = sorted(lfw.people)
    lfw_owner = np.array(
        [
            people.index(p.parent.name) if p.parent.name in lfw.people else len(people) + i
            for i, p in enumerate(lfw_paths)
        ]
    )
    everyone = np.arange(len(lfw_paths))
    lfw_cmp = comparisons(
        "lfw-dev, FMR 1e-4", data["lfw"]["vectors"], lfw_owner, everyone, everyone, 1e-4
    )
    lag_owner = np.array(lag.young_owner + lag.adult_owner)
    young = np.arange(len(lag.young))
    adult = np.arange(len(lag.young), len(lag_paths))
    lag_cmp = comparisons(
        "lag-dev, FMR 1e-3", data["lag"]["vectors"], lag_owner, adult, young, 1e-3
    )
    sets = []
    for cmp, name in ((lag_cmp, "lag"), (lfw_cmp, "lfw")):
        values, mirror = data[name]["values"], data[name]["mirror"]
        scores = np.column_stack(
            [
                [quality.SCORES[c](v) if np.isfinite(v) else np.nan for v in values[:, k]]
                for k, c in enumerate(COMPONENTS)
            ]
            + [100 * np.clip((mirror[:, k] - 0.5) / 0.5, 0, 1) for k in range(len(MIRRORED))]
        )
        sets.append((cmp, scores, served(values)))
    names = [c.value for c in COMPONENTS] + [f"mirror_agreement_{n}" for n in MIRRORED]
    lines = explore(sets, names)
    report("\n".join(lines), "Face image quality", args.write)


def served(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Each face's unified score as the service computes it (NaN: no face)."""
    out = np.full(len(values), np.nan)
    for i, row in enumerate(values):
        if np.isfinite(row[COMPONENTS.index(C.DETECTION_CONFIDENCE)]):
            measured = {c: float(v) for c, v in zip(COMPONENTS, row, strict=True) if np.isfinite(v)}
            out[i] = quality.rated(measured).score
    return out


Set = tuple[Comparisons, NDArray[np.float64], NDArray[np.float64]]  # comparisons, scores, served


def explore(sets: list[Set], names: list[str]) -> list[str]:
    """The table of every rule on each set's choosing and judging halves, and the served
    rule and the detector's confidence (the baseline) on every person with intervals."""
    rng = np.random.default_rng(7)
    halves = [rng.random(int(c.person.max()) + 1) < 0.5 for c, _, _ in sets]
    tried = rules(names)
    lines = ["## Face image quality (`python -m bench.quality_explore`)", ""]
    for (cmp, _, _), h in zip(sets, halves, strict=True):
        lines.append(
            f"- {cmp.label}: {len(cmp.missed)} mated comparisons of {len(np.unique(cmp.person))} "
            f"persons, FNMR {cmp.missed.mean():.3f} at threshold {cmp.threshold:.3f}; the "
            f"choosing half holds {int(h[cmp.person].sum())} of them"
        )
    lines.append(
        "- A comparison's quality is the lower of its two faces'. Ratio: how much "
        "more often the lowest-quality 10% miss than all (random: 1)."
    )
    header = ["rule"] + [f"{c.label}: choose / judge" for c, _, _ in sets]
    rows = []
    for label, rule in tried.items():
        cells = [label]
        for (cmp, sc, _), h in zip(sets, halves, strict=True):
            q = np.nan_to_num(rule(sc), nan=0.0)
            cells.append(f"{ratio(cmp, q, h):.2f} / {ratio(cmp, q, ~h):.2f}")
        rows.append(cells)
    lines += ["", *table(header, rows), ""]
    for label, pick in (("detection confidence (baseline)", None), ("served", "served")):
        lines.append(f"**{label}**, every person, 95% intervals over persons:")
        for cmp, sc, as_served in sets:
            face_q = as_served if pick else sc[:, names.index(C.DETECTION_CONFIDENCE.value)]
            qc = np.nan_to_num(np.minimum(face_q[cmp.a], face_q[cmp.b]), nan=0.0)
            d = discard(cmp.missed, qc)
            iv = bootstrap(cmp.missed, qc, cmp.person)
            kept = ", ".join(
                f"{f:.0%} set aside {d.kept[f]:.3f} [{iv[f'kept_{f}'][0]:.3f}, "
                f"{iv[f'kept_{f}'][1]:.3f}]"
                for f in FRACTIONS
            )
            lo, hi = iv["lowest_ratio"]
            lines.append(
                f"- {cmp.label}: FNMR {d.fnmr:.3f} (the same at random); {kept}; lowest 10% "
                f"miss {d.lowest_ratio:.2f}× [{lo:.2f}, {hi:.2f}] (ceiling {d.ceiling:.2f}×)"
            )
        lines.append("")
    return lines


if __name__ == "__main__":
    main()

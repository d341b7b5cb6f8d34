"""Age and gender chosen on one part of UTKFace and judged on another that shares no photo
and no capture day: the second gender opinion, the abstention threshold, the age at both ends.

Run: .venv/bin/python -m bench.attributes_held_out [--devsets ../shared/devsets]
     [--strangers /work/devdata/utk-strangers] [--cache /work/devdata/cache] [--write]

Faces: utk-dev (598 crops) and the strangers list (11,325 crops), each through the
detector (its largest confident face, as bench.attribute_groups) and both attribute
networks, the face and its mirror; the readings are cached outside the repository (about
25 minutes once, two processes). The split is the capture day in the file name
(``AGE_GENDER_RACE_YYYYMMDDhhmm…``): a photo taken on an odd day of the month is for
choosing, on an even day for judging. UTKFace was gathered in batches by day, so the two
parts share no batch. Every rule and constant is chosen on the odd days only; the tables
report the even days, utk-dev's and the strangers' apart, with 95% bootstrap intervals.
"""

from __future__ import annotations

import argparse
import itertools
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from bench.attribute_groups import monotone_fit
from bench.common import arguments, report, table
from bench.datasets import STRANGERS, UtkFace, add_devsets, odd_day, utk_dev, utk_strangers
from bench.embeddings import cached
from facedb.config import Settings
from facedb.pipeline.analyzer import FaceAnalyzer
from facedb.pipeline.attributes import class_ages
from facedb.pipeline.decode import decode_image
from facedb.pipeline.faceres import GENDER_SCALES, pooled_age, pooled_female

SECTION = "## Age and gender held out (UTKFace by capture day)"
RACES = {0: "White", 1: "Black", 2: "East Asian", 3: "Indian", 4: "Others"}
BANDS = ((0, 5), (5, 13), (13, 20), (20, 40), (40, 60), (60, 80), (80, 200))
Arrays = dict[str, NDArray[np.generic]]
_analyzer: FaceAnalyzer | None = None


# --- the readings ---------------------------------------------------------------------------
def _start() -> None:
    global _analyzer
    _analyzer = FaceAnalyzer(Settings(inference_threads=1))
    _analyzer.load()


def _read(path: str) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
    """One crop's package age classes + [package age, package female, FaceRes female] and
    FaceRes's 100 age classes (None where no face is found)."""
    assert _analyzer is not None
    bgr = decode_image(Path(path).read_bytes(), 1 << 40, 1 << 40).bgr.copy()
    found = [
        d
        for d in _analyzer.detector.detect(bgr)
        if d.confidence >= 0.8 and min(d.box.w, d.box.h) >= 20
    ]
    if not found:
        return None
    face = max(found, key=lambda d: d.box.w * d.box.h)
    estimator = _analyzer.attributes
    with estimator.using() as predictor:
        read = estimator.readings(predictor, bgr, face)
    if read is None or read.faceres is None:
        return None
    package = np.concatenate([read.ages, [read.age, read.female, read.faceres.female]])
    return np.asarray(package, np.float64), read.faceres.ages


def readings(faces: list[UtkFace], workers: int) -> Arrays:
    """Every face's readings, two processes (each network on one thread)."""
    with ProcessPoolExecutor(workers, initializer=_start) as pool:
        got = list(pool.map(_read, [str(f.path) for f in faces], chunksize=16))
    found = np.array([g is not None for g in got])
    package = np.array([g[0] if g else np.full(84, np.nan) for g in got])
    faceres = np.array([g[1] if g else np.full(100, np.nan) for g in got])
    return {"found": found, "package": package, "faceres": faceres}


# --- the faces as arrays -----------------------------------------------------------------------
@dataclass(frozen=True)
class Faces:
    """Faces found, labelled, with their readings."""

    source: NDArray[np.str_]  # "utk-dev" or "strangers"
    choose: NDArray[np.bool_]  # taken on an odd day of the month
    age: NDArray[np.float64]
    female: NDArray[np.bool_]
    race: NDArray[np.int64]
    package: NDArray[np.float64]  # (n, 81) the package's age classes
    package_age: NDArray[np.float64]
    package_female: NDArray[np.float64]
    faceres_female: NDArray[np.float64]
    faceres: NDArray[np.float64]  # (n, 100)

    def part(self, keep: NDArray[np.bool_]) -> Faces:
        return Faces(*(getattr(self, f)[keep] for f in self.__dataclass_fields__))


def faces_of(name: str, faces: list[UtkFace], arrays: Arrays) -> Faces:
    found = arrays["found"].astype(bool)
    kept = [f for f, ok in zip(faces, found, strict=True) if ok]
    package = arrays["package"][found]
    return Faces(
        np.array([name] * len(kept)),
        np.array([odd_day(f) for f in kept]),
        np.array([f.age for f in kept], np.float64),
        np.array([f.female for f in kept]),
        np.array([f.race for f in kept]),
        package[:, :81],
        package[:, 81],
        package[:, 82],
        package[:, 83],
        arrays["faceres"][found],
    )


# --- the rules --------------------------------------------------------------------------------
Female = Callable[[Faces], NDArray[np.float64]]


def package_alone(f: Faces) -> NDArray[np.float64]:
    return f.package_female


def faceres_alone(f: Faces) -> NDArray[np.float64]:
    return f.faceres_female


def pooled(weight: float) -> Female:
    def rule(f: Faces) -> NDArray[np.float64]:
        pairs = zip(f.package_female, f.faceres_female, strict=True)
        return np.array([pooled_female(a, b, weight) for a, b in pairs])

    return rule


def served_ages(f: Faces, values: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.array([pooled_age(a, values, b) for a, b in zip(f.package, f.faceres, strict=True)])


def gender_rates(
    f: Faces, female: NDArray[np.float64], cut: float
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Per face: answered (the pooled probability of the likelier gender ≥ cut), right."""
    answered = np.maximum(female, 1.0 - female) >= cut
    right = (female >= 0.5) == f.female
    return answered, right


def worst_abstention(f: Faces, female: NDArray[np.float64], cut: float) -> float:
    answered, _ = gender_rates(f, female, cut)
    return max(1.0 - answered[f.race == r].mean() for r in RACES if (f.race == r).any())


def chosen_cut(f: Faces, female: NDArray[np.float64], most: float) -> float:
    """The highest threshold at which no group of ``f`` abstains on more than ``most``."""
    cuts = np.arange(0.50, 0.995, 0.005)
    fine = [c for c in cuts if worst_abstention(f, female, c) <= most]
    return float(max(fine)) if fine else 0.5


# --- intervals --------------------------------------------------------------------------------
def boot(values: NDArray[np.float64], digits: int = 3, draws: int = 1000) -> str:
    if len(values) == 0:
        return "–"
    rng = np.random.default_rng(0)
    means = [values[rng.integers(0, len(values), len(values))].mean() for _ in range(draws)]
    low, high = np.percentile(means, [2.5, 97.5])
    return f"{values.mean():.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def gap(f: Faces, answered: NDArray[np.bool_], right: NDArray[np.bool_], race: int) -> str:
    """The overall right-where-answered less the group's, with a bootstrap interval."""
    rng = np.random.default_rng(1)
    n = len(right)
    draws = []
    for _ in range(1000):
        pick = rng.integers(0, n, n)
        a, r, g = answered[pick], right[pick], f.race[pick] == race
        if (a & g).any():
            draws.append(r[a].mean() - r[a & g].mean())
    whole = right[answered].mean() - right[answered & (f.race == race)].mean()
    low, high = np.percentile(draws, [2.5, 97.5])
    return f"{100 * whole:+.1f} [{100 * low:+.1f}, {100 * high:+.1f}]"


# --- the age correction -----------------------------------------------------------------------
def stack_features(f: Faces, values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Both networks' whole answers: their cumulative class probabilities, each network's
    expected age and the served (pooled) one."""
    served = served_ages(f, values)
    return np.column_stack([np.ones(len(f.age)), np.cumsum(f.package, 1)[:, :-1],
                            np.cumsum(f.faceres, 1)[:, :-1], f.package @ values,
                            f.faceres @ np.arange(100.0), served, np.log1p(served)])  # fmt: skip


def stacked(choose: Faces, values: NDArray[np.float64], lam: float = 100.0) -> NDArray[np.float64]:
    """Ridge weights from ``stack_features`` to the true age, fitted on ``choose``."""
    x = stack_features(choose, values)
    penalty = lam * np.eye(x.shape[1])
    penalty[0, 0] = 0.0  # the intercept is not shrunk
    return np.asarray(np.linalg.solve(x.T @ x + penalty, x.T @ choose.age), np.float64)


# --- the report -------------------------------------------------------------------------------
def gender_table(parts: dict[str, Faces], rules: dict[str, tuple[Female, float]]) -> list[str]:
    rows = []
    for label, (rule, cut) in rules.items():
        for name, f in parts.items():
            female = rule(f)
            answered, right = gender_rates(f, female, cut)
            east = f.race == 2
            worst = max(1 - answered[f.race == r].mean() for r in RACES if (f.race == r).any())
            rows.append([label, f"{cut:.3f}", name, str(len(f.age)),
                         boot(answered.astype(float)), boot(right[answered].astype(float)),
                         boot(answered[east].astype(float)),
                         boot(right[answered & east].astype(float)),
                         gap(f, answered, right, 2), f"{worst:.3f}"])  # fmt: skip
    return table(["rule", "cut", "judged on", "faces", "answered", "right where answered",
                  "East Asian answered", "East Asian right", "gap, points", "worst group abstains"],
                 rows)  # fmt: skip


def groups_table(parts: dict[str, Faces], rule: Female, cut: float) -> list[str]:
    rows = []
    for name, f in parts.items():
        answered, right = gender_rates(f, rule(f), cut)
        for code, race in RACES.items():
            g = f.race == code
            rows.append([name, race, str(int(g.sum())), boot(answered[g].astype(float)),
                         boot(right[g & answered].astype(float))])  # fmt: skip
    return table(["judged on", "group", "faces", "answered", "right where answered"], rows)


def age_table(
    parts: dict[str, Faces], estimates: dict[str, dict[str, NDArray[np.float64]]]
) -> list[str]:
    rows = []
    for name, f in parts.items():
        for label, age in estimates[name].items():
            error = np.abs(age - f.age)
            cells = [name, label, boot(error, 2)]
            for low, high in BANDS:
                band = (f.age >= low) & (f.age < high)
                cells.append(f"{error[band].mean():.2f} ({int(band.sum())})")
            rows.append(cells)
    bands = [f"{lo}–{hi - 1}" if hi < 200 else f"{lo}+" for lo, hi in BANDS]
    return table(["judged on", "age", "MAE [95% CI]", *bands], rows)


def served_rule(f: Faces, values: NDArray[np.float64]) -> NDArray[np.float64]:
    """The served probability of "female": the pool, made honest for the estimated age."""
    ages = served_ages(f, values)
    pairs = zip(f.package_female, f.faceres_female, ages, strict=True)
    return np.array([pooled_female(a, b, age=age) for a, b, age in pairs])


def fitted_scales(f: Faces, ages: NDArray[np.float64]) -> list[float]:
    """Per band of GENDER_SCALES, the multiplier of the pooled log-odds that maximises the
    likelihood of the true genders (the served constants were fitted so)."""
    pool = pooled(0.5)(f)
    odds = np.log(pool / (1.0 - pool))
    sign = np.where(f.female, 1.0, -1.0)
    scales, low = [], -np.inf
    for below, _ in GENDER_SCALES:
        band = (ages >= low) & (ages < below)
        grid = np.arange(0.05, 3.0, 0.01)
        loss = [np.logaddexp(0.0, -k * sign[band] * odds[band]).sum() for k in grid]
        scales.append(round(float(grid[int(np.argmin(loss))]), 2))
        low = below
    return scales


def reliability(parts: dict[str, Faces], female: dict[str, NDArray[np.float64]]) -> list[str]:
    """How often answers at each stated probability are right: honest when the two agree."""
    edges = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.01)
    rows = []
    for name, f in parts.items():
        p = female[name]
        sure, right = np.maximum(p, 1.0 - p), (p >= 0.5) == f.female
        cells = [name]
        for low, high in itertools.pairwise(edges):
            b = (sure >= low) & (sure < high)
            cells.append(
                f"{sure[b].mean():.2f} → {right[b].mean():.2f} ({int(b.sum())})" if b.any() else "–"
            )
        rows.append(cells)
    return table(
        ["judged on", "0.5–0.6", "0.6–0.7", "0.7–0.8", "0.8–0.9", "0.9–0.95", "0.95–1"], rows
    )


def cost(faces: list[UtkFace], count: int = 100) -> list[str]:
    """Milliseconds per face of the served estimate against the package alone (one thread
    each; FaceRes's gender comes out of the same pass as its age)."""
    analyzer = FaceAnalyzer(Settings(inference_threads=1))
    analyzer.load()
    crops = []
    for face in faces[:count]:
        bgr = decode_image(face.path.read_bytes(), 1 << 40, 1 << 40).bgr.copy()
        found = analyzer.detector.detect(bgr)
        if found:
            crops.append((bgr, max(found, key=lambda d: d.box.w * d.box.h)))
    took = {}
    for label, pooled_ in (("the package alone", False), ("served: both networks", True)):
        started = time.perf_counter()
        for bgr, face in crops:
            analyzer.attributes.estimate(bgr, [face], pooled=pooled_)
        took[label] = 1000 * (time.perf_counter() - started) / len(crops)
    alone, both = took.values()
    return [f"Cost per face ({len(crops)} utk-dev crops, one thread): the package alone "
            f"{alone:.1f} ms, both networks (age and gender pooled) {both:.1f} ms, "
            f"ratio {both / alone:.2f}."]  # fmt: skip


def main() -> None:
    parser = arguments(__doc__)
    add_devsets(parser, cache=True)
    parser.add_argument("--strangers", type=Path, default=STRANGERS)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    run(parser.parse_args())


def run(args: argparse.Namespace) -> None:
    sets = {
        "utk-dev": utk_dev(args.devsets),
        "strangers": utk_strangers(args.devsets, args.strangers),
    }
    faces, found = [], {}
    for name, labelled in sets.items():
        paths = [f.path for f in labelled]
        arrays = cached(f"attributes-{name}", paths, lambda these=labelled: readings(these, args.workers),
                        args.cache, "faceres")  # fmt: skip
        faces.append(faces_of(name, labelled, arrays))
        found[name] = f"{int(arrays['found'].sum())}/{len(paths)}"
    every = Faces(
        *(np.concatenate([getattr(f, k) for f in faces]) for k in Faces.__dataclass_fields__)
    )
    choose = every.part(every.choose)
    judged = {n: every.part(~every.choose & (every.source == n)) for n in sets}
    values = np.asarray(class_ages(FaceAnalyzer(Settings()).attributes._build()), np.float64)

    # Choosing: each rule's threshold, the calibration's scales, the served threshold.
    candidates = {"the package alone": package_alone, "FaceRes alone": faceres_alone}
    candidates |= {f"pooled, weight {w:.2f} on FaceRes": pooled(w) for w in (0.25, 0.5, 0.75)}
    rules: dict[str, tuple[Female, float]] = {"before: the package alone": (package_alone, 0.78)}
    chosen_on = []
    for label, rule in candidates.items():
        female = rule(choose)
        cut = chosen_cut(choose, female, 0.12)
        answered, right = gender_rates(choose, female, cut)
        chosen_on.append([label, f"{cut:.3f}", f"{answered.mean():.3f}", f"{right[answered].mean():.3f}",
                          f"{right[answered & (choose.race == 2)].mean():.3f}"])  # fmt: skip
        rules[label] = (rule, cut)
    served_cut = Settings().gender_min_probability
    rules["now: pooled, honest for the age (served)"] = (
        lambda f: served_rule(f, values),
        served_cut,
    )
    before_answered = gender_rates(choose, package_alone(choose), 0.78)[0].mean()
    cuts = []
    for cut in np.arange(0.55, 0.80, 0.05):
        answered, right = gender_rates(choose, served_rule(choose, values), cut)
        cuts.append([f"{cut:.2f}", f"{answered.mean():.3f}", f"{right[answered].mean():.3f}",
                     f"{answered[choose.race == 2].mean():.3f}",
                     f"{right[answered & (choose.race == 2)].mean():.3f}"])  # fmt: skip
    scales = fitted_scales(choose, served_ages(choose, values))

    fit_age = served_ages(choose, values)
    xs, ys = monotone_fit(fit_age, choose.age)
    weights = stacked(choose, values)
    estimates = {}
    for name, f in judged.items():
        age = served_ages(f, values)
        estimates[name] = {
            "as served": age,
            "monotone map fitted on the odd days": np.interp(age, xs, ys),
            "both networks' classes stacked (ridge, odd days)": np.clip(
                stack_features(f, values) @ weights, 0.0, 110.0
            ),
        }

    lines = [SECTION, "",
             f"`python -m bench.attributes_held_out`. Faces found: utk-dev {found['utk-dev']}, strangers "
             f"{found['strangers']}. Choosing part (odd capture days, both sets): {len(choose.age)} faces, "
             f"{int((choose.race == 2).sum())} East Asian, of them {int(((choose.race == 2) & (choose.age < 5)).sum())} "
             "under 5. Each rule's threshold chosen there as the highest at which no group abstains on "
             "more than 12%:", ""]  # fmt: skip
    lines += table(["rule", "cut", "answered", "right", "East Asian right"], chosen_on)
    lines += ["", f"The served calibration's scales refitted on the choosing part: {scales} "
              f"(served: {[k for _, k in GENDER_SCALES]}). The served threshold on the choosing part "
              f"(before: {before_answered:.3f} of faces answered):", ""]  # fmt: skip
    lines += table(["cut", "answered", "right", "East Asian answered", "East Asian right"], cuts)
    lines += ["", "Judged (even capture days):", ""]
    lines += gender_table(judged, rules)
    served = rules["now: pooled, honest for the age (served)"]
    lines += ["", "The served rule by group, judged:", ""]
    lines += groups_table(judged, served[0], served[1])
    lines += ["", "Stated probability → share right (faces), judged; before, then now:", ""]
    lines += reliability(judged, {n: package_alone(f) for n, f in judged.items()})
    lines += reliability(judged, {n: served_rule(f, values) for n, f in judged.items()})[2:]
    lines += ["", "Age, judged (even capture days); in brackets the band's faces:", ""]
    lines += age_table(judged, estimates)
    lines += ["", *cost(sets["utk-dev"])]
    report("\n".join(lines), SECTION, args.write)


if __name__ == "__main__":
    main()

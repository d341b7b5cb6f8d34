"""FaceNet, dlib's ResNet descriptor, SFace and their fusions, on open-set LFW and cross-age LAG.

Run: .venv/bin/python -m bench.recognisers [--devsets ../shared/devsets] [--lag DIR] [--write]

Every photo goes through the service's pipeline once (detector, the largest face, the
FaceNet recipe, the age estimate); dlib's descriptor is computed on the same box (dlib's
5-point shape inside the box, its 150x150 chip: served alone, and measured with its mirror
averaged in as well), and SFace on ArcFace's chip placed by the detector's eyes (and its
mirror), each by the service's own network objects.
The embeddings are cached under ``--cache`` (outside the repository), so the comparison of
fusions and templates that follows reads the same vectors:

- Fusion: a face's fused score is ``w * cos_facenet + (1 - w) * cos_dlib``, which is the
  cosine of the two unit embeddings concatenated with weights sqrt(w) and sqrt(1 - w); with
  SFace's weight s beside them, ``(1 - s) * (that) + s * cos_sface``.
  Score-level fusion with per-model normalisation (z-scores against each model's stranger
  scores) is the same ranking with w rescaled by the two spreads: it is measured as its own
  row ("z-norm"), its spreads taken from the distractors' scores against each other.
- Templates (LAG: several childhood photos per person): a person scored by its best photo
  (max), by the mean of its two best, or by the best of its per-age-band mean embeddings
  (bands of the estimated age).
- LFW open-set as ``facedb eval`` measures it (first photo of each person + 400 distractors
  enrolled, the other photos searched; FNIR at FPIR 1%, a mated search without its mate
  being a non-mated search). LAG as the devsets README gives it (every childhood photo
  enrolled, every adult photo searched). Probes whose photo shows no face count as misses.
  95% intervals: bootstrap over searches (1000 resamples).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bench.common import arguments, report, table
from bench.datasets import add_devsets, lag_dev, lag_dev_ids, lfw_dev
from bench.embeddings import embedded
from bench.scoring import (
    Fusion,
    lag_ranks,
    lag_rows,
    lfw_rows,
    lfw_searches,
    paired_rows,
    rank_cells,
    znorm_weight,
)
from facedb.config import Settings
from facedb.pipeline.analyzer import FaceAnalyzer
from facedb.pipeline.recipes import BUILT_IN, MARGIN_MIRROR_VERSION, TRIPLE_VERSION

SECTION = "## Recognisers: FaceNet, dlib, SFace and their fusions"
WEIGHTS = (1.0, 0.7, 0.6, 0.5, 0.4, 0.3, 0.0)


# --- scoring ------------------------------------------------------------------------------


# --- LAG ----------------------------------------------------------------------------------


# --- LFW ----------------------------------------------------------------------------------


def cost(analyzer: FaceAnalyzer, paths: list[Path]) -> list[list[str]]:
    """Median ms to analyse one photo (decode, detect, age/gender, embed) per recipe, the
    recipes alternated photo by photo; each photo's one face."""
    recipes = [BUILT_IN[n] for n in ("facenet", "facenet+dlib", "facenet+dlib+sface")]
    times: dict[str, list[float]] = {r.version: [] for r in recipes}
    for path in paths:
        data = path.read_bytes()
        for recipe in recipes:
            analyzer.use(recipe.version)
            started = time.perf_counter()
            analyzer.analyze(data)
            times[recipe.version].append(time.perf_counter() - started)
    base = float(np.median(times[MARGIN_MIRROR_VERSION]))
    return [[analyzer.recipes.name_of(r.version), f"{1000 * np.median(times[r.version]):.0f}",
             f"{np.median(times[r.version]) / base:.2f}x"] for r in recipes]  # fmt: skip


def main() -> None:
    parser = arguments(__doc__)
    add_devsets(parser, lag=True, cache=True)
    args = parser.parse_args()
    analyzer = FaceAnalyzer(Settings())
    analyzer.load()

    lfw = lfw_dev(args.devsets)
    people, distractors, lfw_paths = lfw.people, lfw.distractors, lfw.paths
    lfw_emb = embedded("lfw-dev", lfw_paths, analyzer, args.cache)
    ids = lag_dev_ids(args.devsets)
    lag = lag_dev(args.lag, ids)
    young, young_owner, adult, adult_owner = lag.young, lag.young_owner, lag.adult, lag.adult_owner
    young_emb = embedded("lag-young", young, analyzer, args.cache)
    adult_emb = embedded("lag-adult", adult, analyzer, args.cache)

    distractor_rows = np.arange(len(lfw_paths) - len(distractors), len(lfw_paths))
    distractor_rows = distractor_rows[~np.isnan(lfw_emb.facenet[distractor_rows, 0])]
    z = znorm_weight(lfw_emb, distractor_rows)
    facenet, pair, triple = (
        Fusion("FaceNet", 1.0),
        Fusion("w=0.5", 0.5),
        Fusion("facenet+dlib+sface, equal", 0.5, sface=1 / 3),
    )
    fusions = [
        Fusion("FaceNet" if w == 1 else "dlib" if w == 0 else f"w={w:.1f}", w) for w in WEIGHTS
    ]
    fusions.append(Fusion(f"z-norm (w={z:.2f})", z))
    fusions += [
        Fusion("dlib, + mirror", 0.0, mirror=True),
        Fusion("w=0.5, dlib + mirror", 0.5, mirror=True),
        Fusion("SFace", 1.0, sface=1.0),
        Fusion("facenet+sface, equal", 1.0, sface=0.5),
        Fusion("dlib+sface, equal", 0.0, sface=0.5),
        triple,
    ]

    index = {p: i for i, p in enumerate(lfw_paths)}
    lfw_table = "\n".join(
        table(
            ["recipe", "rank-1", "FNIR @ FPIR 1%"],
            lfw_rows(people, distractors, lfw_emb, index, fusions),
        )
    )
    lag_table = "\n".join(
        table(
            ["recipe", "template", "rank-1", "rank-5", "rank-10"],
            lag_rows(young_emb, np.array(young_owner), adult_emb, np.array(adult_owner), fusions),
        )
    )
    yo, ao = np.array(young_owner), np.array(adult_owner)

    def lag(fusion: Fusion) -> NDArray[np.int64]:
        return lag_ranks(young_emb, yo, adult_emb, ao, fusion)

    def lfw_of(fusion: Fusion) -> tuple[Any, ...]:
        return lfw_searches(people, distractors, lfw_emb, index, fusion)

    pairs = [Fusion(f"w={w:.1f}", w) for w in WEIGHTS if 0 < w < 1] + [triple]
    paired = "\n".join(table(
        ["fusion", "LAG rank-1", "LAG rank-10", "lfw-dev rank-1", "lfw-dev FNIR @ FPIR 1%"],
        paired_rows(lag, lfw_of, pairs, facenet),
    ))  # fmt: skip
    paired_pair = "\n".join(table(
        ["fusion", "LAG rank-1", "LAG rank-10", "lfw-dev rank-1", "lfw-dev FNIR @ FPIR 1%"],
        paired_rows(lag, lfw_of, [triple], pair),
    ))  # fmt: skip
    folds = np.random.default_rng(7).permutation(len(ids))
    fold_rows = []
    for fusion in (facenet, pair, triple):
        ranks = np.concatenate(
            [lag_ranks(young_emb, yo, adult_emb, ao, fusion, folds[f::3]) for f in range(3)]
        )
        fold_rows.append([fusion.label, *rank_cells(ranks, np.random.default_rng(0))])
    fold_table = "\n".join(table(["recipe", "rank-1", "rank-5", "rank-10"], fold_rows))
    warm = distractors[:5]
    for path in warm:  # load every network before timing
        analyzer.use(TRIPLE_VERSION)
        analyzer.analyze(path.read_bytes())
    cost_table = "\n".join(table(["recipe", "ms per photo (median)", "vs FaceNet"],
                                  cost(analyzer, distractors[5:45])))  # fmt: skip
    missed = {
        "lfw-dev": int(np.isnan(lfw_emb.facenet[:, 0]).sum()),
        "lag young": int(np.isnan(young_emb.facenet[:, 0]).sum()),
        "lag adult": int(np.isnan(adult_emb.facenet[:, 0]).sum()),
    }
    text = "\n".join([
        SECTION, "",
        "`python -m bench.recognisers` (see its docstring). w = FaceNet's weight in the fused "
        "score beside dlib; 95% bootstrap intervals over searches. Photos without a detected "
        f"face (missed searches, or gallery photos left out): {missed}.", "",
        f"**lfw-dev open-set** ({len(people)} persons + {len(distractors)} distractors; "
        f"{sum(len(v) - 1 for v in people.values())} searches)", "", lfw_table, "",
        f"**LAG cross-age** ({len(ids)} identities, {len(young)} childhood photos enrolled, "
        f"{len(adult)} adult photos searched)", "", lag_table, "",
        "**Paired: each fusion minus FaceNet alone** on the same searches (95% paired "
        "bootstrap intervals; max template)", "", paired, "",
        "**Paired: the three networks minus facenet+dlib** (as above)", "", paired_pair, "",
        "**LAG in galleries of 100** (the 300 identities in three folds of 100, as the "
        "targets are stated; max template)", "", fold_table, "",
        "**Cost** (40 lfw-dev photos, one face each, in-process, the recipes alternated "
        "photo by photo): what a search or an enrollment adds per photo", "", cost_table,
    ])  # fmt: skip
    report(text, SECTION, args.write)


if __name__ == "__main__":
    main()

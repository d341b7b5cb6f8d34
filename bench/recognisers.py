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
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bench.common import arguments, report, table
from facedb.config import Settings
from facedb.domain import NetworkName
from facedb.evaluation import metrics
from facedb.models.sample_data import photos
from facedb.pipeline.analyzer import FaceAnalyzer
from facedb.pipeline.base import LocatedFace
from facedb.pipeline.chips import sface_chip
from facedb.pipeline.decode import decode_image
from facedb.pipeline.dlib_resnet import DlibDescriptor
from facedb.pipeline.recipes import BUILT_IN, MARGIN_MIRROR_VERSION, TRIPLE_VERSION
from facedb.pipeline.sface import SFaceRecogniser

SECTION = "## Recognisers: FaceNet, dlib, SFace and their fusions"
LAG_PIC = Path("/work/devdata/lag/FaceDetection/FaceDetection/data/Pic")
CACHE = Path("/work/devdata/cache")
WEIGHTS = (1.0, 0.7, 0.6, 0.5, 0.4, 0.3, 0.0)
BANDS = (0, 13, 20, 40, 200)
BOOT = 1000


@dataclass
class Embedded:
    """One photo: its largest face's embeddings (NaN rows where no face was found)."""

    facenet: NDArray[np.float32]
    dlib: NDArray[np.float32]  # the chip alone (served)
    age: NDArray[np.float32]
    dlib_mirror: NDArray[np.float32]  # the chip and its mirror, averaged
    sface: NDArray[np.float32]  # the chip and its mirror, averaged (served)


def largest_face(
    path: Path, analyzer: FaceAnalyzer
) -> tuple[LocatedFace, NDArray[np.uint8]] | None:
    """Return the photo's largest face as the service finds it, and the photo (BGR)."""
    data = path.read_bytes()
    located = analyzer.locate(data)
    if not located:
        return None
    face = max(located, key=lambda f: f.detection.box.w * f.detection.box.h)
    return face, decode_image(data, 1 << 62, 1 << 62).bgr


def embed_all(paths: list[Path], analyzer: FaceAnalyzer) -> Embedded:
    """Each photo's largest face through the service's FaceNet recipe, dlib and SFace."""
    dlib_model = analyzer.networks[NetworkName.DLIB]
    sface = analyzer.networks[NetworkName.SFACE]
    assert isinstance(dlib_model, DlibDescriptor) and isinstance(sface, SFaceRecogniser)
    analyzer.use(MARGIN_MIRROR_VERSION)
    n = len(paths)
    facenet = np.full((n, 128), np.nan, np.float32)
    dlib = np.full((n, 128), np.nan, np.float32)
    dlib_mirror = np.full((n, 128), np.nan, np.float32)
    sface_vectors = np.full((n, 128), np.nan, np.float32)
    age = np.full(n, np.nan, np.float32)
    started = time.perf_counter()
    for i, path in enumerate(paths):
        found = largest_face(path, analyzer)
        if found is None:
            continue
        face, bgr = found
        facenet[i] = analyzer.embed([face])[0].embedding
        chip, mirrored = dlib_model.views(bgr, face.detection, mirror=True)
        dlib[i], other = dlib_model.embed([chip[None], mirrored[None]])
        both = dlib[i] + other
        dlib_mirror[i] = both / np.linalg.norm(both)
        sface_vectors[i] = sface.embed([sface_chip(bgr, face.detection, {})])[0]
        if face.attributes is not None:
            age[i] = face.attributes.age
        if i % 100 == 99:
            print(f"  {i + 1}/{n} photos, {time.perf_counter() - started:.0f} s", flush=True)
    return Embedded(facenet, dlib, age, dlib_mirror, sface_vectors)


def cached(name: str, paths: list[Path], make: Callable[[], Embedded], cache: Path) -> Embedded:
    file = cache / f"{name}.npz"
    if file.exists():
        saved = np.load(file, allow_pickle=False)
        if list(saved["paths"]) == [str(p) for p in paths] and "sface" in saved:
            return Embedded(*(saved[f.name] for f in fields(Embedded)))
    result = make()
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(file, paths=np.array([str(p) for p in paths]),
             **{f.name: getattr(result, f.name) for f in fields(Embedded)})  # fmt: skip
    return result


# --- scoring ------------------------------------------------------------------------------
def cosines(a: NDArray[np.float32], b: NDArray[np.float32]) -> NDArray[np.float64]:
    """Probe x gallery cosines; a probe without a face scores -1 everywhere."""
    out = np.nan_to_num(a.astype(np.float64) @ b.astype(np.float64).T, nan=-1.0)
    return np.asarray(out)


@dataclass(frozen=True)
class Fusion:
    label: str
    weight: float  # of FaceNet's cosine beside dlib's
    mirror: bool = False  # dlib's chip and its mirror (else the chip alone, as served)
    sface: float = 0.0  # SFace's weight; FaceNet and dlib share the rest by ``weight``

    def scores(self, probe: Embedded, gallery: Embedded, pi: NDArray[np.int64],
               gi: NDArray[np.int64]) -> NDArray[np.float64]:  # fmt: skip
        f = cosines(probe.facenet[pi], gallery.facenet[gi])
        if self.mirror:
            d = cosines(probe.dlib_mirror[pi], gallery.dlib_mirror[gi])
        else:
            d = cosines(probe.dlib[pi], gallery.dlib[gi])
        both = self.weight * f + (1.0 - self.weight) * d
        if self.sface == 0.0:
            return both
        return (1.0 - self.sface) * both + self.sface * cosines(probe.sface[pi], gallery.sface[gi])


def person_scores(
    photo_scores: NDArray[np.float64], owners: NDArray[np.int64], persons: int, how: str
) -> NDArray[np.float64]:
    """Probe x person scores from probe x gallery-photo scores."""
    out = np.full((photo_scores.shape[0], persons), -2.0)
    for person in range(persons):
        cols = photo_scores[:, owners == person]
        if how == "max" or cols.shape[1] == 1:
            out[:, person] = cols.max(axis=1)
        else:  # mean of the best two
            top = np.sort(cols, axis=1)[:, -2:]
            out[:, person] = top.mean(axis=1)
    return out


def ranks_of(person_score: NDArray[np.float64], mates: NDArray[np.int64]) -> NDArray[np.int64]:
    mate = person_score[np.arange(len(mates)), mates]
    return np.asarray((person_score > mate[:, None]).sum(axis=1) + 1, dtype=np.int64)


def rank_cells(ranks: NDArray[np.int64], rng: np.random.Generator) -> list[str]:
    cells = []
    for k in (1, 5, 10):
        e = metrics.with_interval(
            lambda idx, k=k: metrics.rank_rate(ranks[idx], k), len(ranks), BOOT, rng
        )
        cells.append(f"{e['value']:.3f} [{e['low']:.3f}, {e['high']:.3f}]")
    return cells


# --- LAG ----------------------------------------------------------------------------------
def lag_layout(lag: Path, ids: list[str]) -> tuple[list[Path], list[int], list[Path], list[int]]:
    young, young_owner, adult, adult_owner = [], [], [], []
    for person, name in enumerate(ids):
        kids = photos(lag / name).get("y", [])
        grown = photos(lag).get(name, [])
        young += kids
        young_owner += [person] * len(kids)
        adult += grown
        adult_owner += [person] * len(grown)
    return young, young_owner, adult, adult_owner


def band_templates(
    gallery: Embedded, owners: NDArray[np.int64]
) -> tuple[Embedded, NDArray[np.int64]]:
    """One mean embedding per person and estimated-age band (each model's mean, renormalised)."""
    columns: dict[str, list[Any]] = {f.name: [] for f in fields(Embedded)}
    own = []
    band = np.digitize(np.nan_to_num(gallery.age, nan=10.0), BANDS)
    for person in np.unique(owners):
        for b in np.unique(band[owners == person]):
            rows = (owners == person) & (band == b) & ~np.isnan(gallery.facenet[:, 0])
            if not rows.any():
                continue
            for name, out in columns.items():
                values = getattr(gallery, name)[rows]
                if name == "age":
                    out.append(np.nanmean(values) if (~np.isnan(values)).any() else np.nan)
                else:
                    mean = values.mean(axis=0)
                    out.append(mean / np.linalg.norm(mean))
            own.append(person)
    return Embedded(**{n: np.array(v, np.float32) for n, v in columns.items()}), np.array(own)


def lag_rows(young: Embedded, young_owner: NDArray[np.int64], adult: Embedded,
             adult_owner: NDArray[np.int64], fusions: list[Fusion]) -> list[list[str]]:  # fmt: skip
    persons = int(young_owner.max()) + 1
    rows = []
    pi, gi = np.arange(len(adult_owner)), np.arange(len(young_owner))
    banded, band_owner = band_templates(young, young_owner)
    bi = np.arange(len(band_owner))
    for fusion in fusions:
        photo = fusion.scores(adult, young, pi, gi)
        for how in ("max", "mean-top-2", "age-band"):
            if how == "age-band":
                per = person_scores(
                    fusion.scores(adult, banded, pi, bi), band_owner, persons, "max"
                )
            else:
                per = person_scores(photo, young_owner, persons, how)
            ranks = ranks_of(per, adult_owner)
            rows.append([fusion.label, how, *rank_cells(ranks, np.random.default_rng(0))])
    return rows


# --- LFW ----------------------------------------------------------------------------------
def lfw_searches(people: dict[str, list[Path]], distractors: list[Path], emb: Embedded,
                 index: dict[Path, int], fusion: Fusion) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:  # fmt: skip
    """Open-set searches: each one's mate rank, mate score and best other score."""
    names = sorted(people)
    gallery_paths = [people[n][0] for n in names] + distractors
    mates = np.array([i for i, n in enumerate(names) for _ in people[n][1:]])
    gi = np.array([index[p] for p in gallery_paths])
    pi = np.array([index[p] for n in names for p in people[n][1:]])
    s = fusion.scores(emb, emb, pi, gi)  # every gallery entry is its own person
    others = s.copy()
    others[np.arange(len(mates)), mates] = -2.0
    return ranks_of(s, mates), s[np.arange(len(mates)), mates], others.max(axis=1)


def lfw_rows(people: dict[str, list[Path]], distractors: list[Path], emb: Embedded,
             index: dict[Path, int], fusions: list[Fusion]) -> list[list[str]]:  # fmt: skip
    return [lfw_row(fusion.label, *lfw_searches(people, distractors, emb, index, fusion))
            for fusion in fusions]  # fmt: skip


def lfw_row(label: str, ranks: NDArray[np.int64], mate_scores: NDArray[np.float64],
            best_other: NDArray[np.float64]) -> list[str]:  # fmt: skip
    rng = np.random.default_rng(0)
    r1 = metrics.with_interval(lambda idx: metrics.rank_rate(ranks[idx], 1), len(ranks), BOOT, rng)
    point = metrics.fnir_at_fpir(ranks == 1, mate_scores, best_other, 0.01)
    fnir = metrics.interval_of(
        lambda mi, ni: metrics.fnir_at_fpir(ranks[mi] == 1, mate_scores[mi], best_other[ni], 0.01).rate,
        (len(ranks), len(best_other)), BOOT, rng,
    )  # fmt: skip
    return [label, f"{r1['value']:.3f} [{r1['low']:.3f}, {r1['high']:.3f}]",
            f"{point.rate:.3f} [{fnir['low']:.3f}, {fnir['high']:.3f}]"]  # fmt: skip


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


def lag_ranks(young: Embedded, young_owner: NDArray[np.int64], adult: Embedded,
              adult_owner: NDArray[np.int64], fusion: Fusion,
              persons: NDArray[np.int64] | None = None) -> NDArray[np.int64]:  # fmt: skip
    """Ranks of the adult searches (max template), among ``persons`` only if given."""
    ky = np.isin(young_owner, persons) if persons is not None else np.ones(len(young_owner), bool)
    ka = np.isin(adult_owner, persons) if persons is not None else np.ones(len(adult_owner), bool)
    scores = fusion.scores(adult, young, np.where(ka)[0], np.where(ky)[0])
    remap = {p: i for i, p in enumerate(np.unique(young_owner[ky]))}
    owners = np.array([remap[o] for o in young_owner[ky]])
    per = person_scores(scores, owners, len(remap), "max")
    return ranks_of(per, np.array([remap[o] for o in adult_owner[ka]]))


def paired_rows(lag: Callable[[Fusion], NDArray[np.int64]],
                lfw: Callable[[Fusion], tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]],
                fusions: list[Fusion], base: Fusion) -> list[list[str]]:  # fmt: skip
    """Each fusion minus ``base``, on the same searches (paired bootstrap, 1000)."""
    rng = np.random.default_rng(0)
    base_lag, base_lfw = lag(base), lfw(base)

    def fnir(st: tuple[Any, ...], i: Any, j: Any) -> float:
        return metrics.fnir_at_fpir(st[0][i] == 1, st[1][i], st[2][j], 0.01).rate

    rows = []
    for fusion in fusions:
        r, o = lag(fusion), lfw(fusion)
        cells = []
        for k in (1, 10):
            draws = [rng.integers(0, len(r), len(r)) for _ in range(BOOT)]
            d = [(r[i] <= k).mean() - (base_lag[i] <= k).mean() for i in draws]
            cells.append(
                f"{(r <= k).mean() - (base_lag <= k).mean():+.3f} [{np.quantile(d, 0.025):+.3f}, {np.quantile(d, 0.975):+.3f}]"
            )
        n = len(o[0])
        draws = [rng.integers(0, n, n) for _ in range(BOOT)]
        d = [(o[0][i] == 1).mean() - (base_lfw[0][i] == 1).mean() for i in draws]
        cells.append(
            f"{(o[0] == 1).mean() - (base_lfw[0] == 1).mean():+.4f} [{np.quantile(d, 0.025):+.3f}, {np.quantile(d, 0.975):+.3f}]"
        )
        every = np.arange(n)
        d = [
            fnir(o, i, j) - fnir(base_lfw, i, j)
            for i, j in ((rng.integers(0, n, n), rng.integers(0, n, n)) for _ in range(BOOT))
        ]
        cells.append(
            f"{fnir(o, every, every) - fnir(base_lfw, every, every):+.4f} [{np.quantile(d, 0.025):+.3f}, {np.quantile(d, 0.975):+.3f}]"
        )
        rows.append([fusion.label, *cells])
    return rows


def znorm_weight(emb: Embedded, rows: NDArray[np.int64]) -> float:
    """FaceNet's weight that puts both models' stranger-score spreads on one scale."""
    spread = []
    for vectors in (emb.facenet[rows], emb.dlib[rows]):
        s = cosines(vectors, vectors)[np.triu_indices(len(rows), 1)]
        spread.append(float(s.std()))
    inverse = [1.0 / s for s in spread]
    return inverse[0] / sum(inverse)


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--devsets", type=Path, default=Path("../shared/devsets"))
    parser.add_argument("--lag", type=Path, default=LAG_PIC, help="LAG's Pic folder")
    parser.add_argument("--cache", type=Path, default=CACHE, help="embeddings cache (outside)")
    args = parser.parse_args()
    analyzer = FaceAnalyzer(Settings())
    analyzer.load()

    lfw = args.devsets / "lfw-dev"
    people = photos(lfw / "people")
    distractors = sorted(p for p in (lfw / "distractors").iterdir() if p.suffix == ".jpg")
    lfw_paths = [p for n in sorted(people) for p in people[n]] + distractors
    lfw_emb = cached("lfw-dev", lfw_paths, lambda: embed_all(lfw_paths, analyzer), args.cache)

    ids = [
        x.strip() for x in (args.devsets / "lag-dev-ids.txt").read_text().splitlines() if x.strip()
    ]
    young, young_owner, adult, adult_owner = lag_layout(args.lag, ids)
    young_emb = cached("lag-young", young, lambda: embed_all(young, analyzer), args.cache)
    adult_emb = cached("lag-adult", adult, lambda: embed_all(adult, analyzer), args.cache)

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

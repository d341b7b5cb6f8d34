"""Scoring the cached embeddings: fusions of the networks' cosines, person templates,
ranks with bootstrap intervals, open-set LFW searches and cross-age LAG ranks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bench.embeddings import Embedded
from facedb.evaluation import metrics

BOOT = 1000  # bootstrap resamples
BANDS = (0, 13, 20, 40, 200)  # the age bands of a band template (estimated ages)


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


def lfw_rows(people: dict[str, list[Path]], distractors: list[Path], emb: Embedded,
             index: dict[Path, int], fusions: list[Fusion]) -> list[list[str]]:  # fmt: skip
    return [lfw_row(fusion.label, *lfw_searches(people, distractors, emb, index, fusion))
            for fusion in fusions]  # fmt: skip


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

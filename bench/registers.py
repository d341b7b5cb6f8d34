"""The register-scale protocol that bench.register_scale, bench.axis_growth and
bench.queue_scale share: lag-dev's childhood photos enrolled among the first N UTKFace
strangers of one fixed shuffle, its adult photos searched; each network's cosines, each
search's rank of its own person, and rank-1/10/50 with intervals."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from bench.datasets import LagDev, lag_dev, lag_dev_ids, utk_strangers
from bench.embeddings import Embedded, embedded, embedded_in_chunks
from bench.scoring import cosines
from facedb.evaluation import metrics
from facedb.pipeline.analyzer import FaceAnalyzer

NETWORKS = ("facenet", "dlib", "sface")
BOOT = 1000
Weights = tuple[float, float, float]
STRANGERS_SHUFFLE_SEED = 5


def register_parts(
    args: argparse.Namespace, analyzer: FaceAnalyzer | None, most: int | None
) -> tuple[LagDev, list[Path], dict[str, Embedded]]:
    """lag-dev, the first ``most`` strangers' paths (all if None) and the embeddings of
    "young", "adult" and "strangers" (``analyzer`` None: from the cache only). ``args``
    carries --devsets, --lag, --strangers and --cache."""
    lag = lag_dev(args.lag, lag_dev_ids(args.devsets))
    faces = utk_strangers(args.devsets, args.strangers)
    order = np.random.default_rng(STRANGERS_SHUFFLE_SEED).permutation(len(faces))
    paths = [faces[i].path for i in order][:most]
    parts = {"young": embedded("lag-young", lag.young, analyzer, args.cache),
             "adult": embedded("lag-adult", lag.adult, analyzer, args.cache),
             "strangers": embedded_in_chunks("utk-strangers", paths, analyzer, args.cache)}  # fmt: skip
    return lag, paths, parts


@dataclass(frozen=True)
class Cosines:
    """Each network's adult-probe x childhood-photo and adult-probe x stranger cosines."""

    young: dict[str, NDArray[np.float64]]
    strangers: dict[str, NDArray[np.float64]]

    def fused(self, w: Weights) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        young = sum(x * self.young[n] for x, n in zip(w, NETWORKS, strict=True))
        strangers = sum(x * self.strangers[n] for x, n in zip(w, NETWORKS, strict=True))
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
    return np.where(mate > -1.0, above + 1, 0).astype(np.int64)


def cells(r: NDArray[np.int64]) -> list[str]:
    rng, out = np.random.default_rng(0), []
    for k in (1, 10, 50):
        e = metrics.with_interval(lambda i, k=k: metrics.rank_rate(r[i], k), len(r), BOOT, rng)
        out.append(f"{e['value']:.3f} [{e['low']:.3f}, {e['high']:.3f}]")
    return out

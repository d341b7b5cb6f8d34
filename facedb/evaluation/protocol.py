"""The evaluation protocol: enroll a gallery into a fresh database, search with the rest.

DIR holds one folder of photos per person. With a seeded shuffle, a share of the persons
(``holdout``) is kept out of the gallery entirely: their photos are the non-mated searches.
Of every other person, the first ``gallery_per_person`` photos (by file name) are enrolled
and the rest are mated searches. Each search ranks every enrolled identity.
"""

from __future__ import annotations

import io
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from facedb.config import Settings
from facedb.domain import UploadStatus
from facedb.errors import FaceDBError
from facedb.evaluation import metrics
from facedb.pipeline.analyzer import FaceAnalyzer
from facedb.sample_data import photos
from facedb.service.context import FaceDB
from facedb.service.enrollment import enroll
from facedb.service.persons import create_person
from facedb.service.search import SearchFilters, rank_identities
from facedb.service.uploads import Upload
from facedb.store.db import upgrade

SCHEMA = "facedb-eval/1"
FARS = (0.01, 0.001)
FPIRS = (0.01, 0.003, 0.001)


@dataclass(frozen=True)
class EvalConfig:
    gallery_per_person: int = 3
    holdout: float = 0.2
    seed: int = 0
    target_far: float = 0.001
    batch: int = 16
    progress: bool = True


@dataclass
class Scores:
    """What the searches produced, before any rate is computed."""

    mate_ranks: list[int] = field(default_factory=list)
    mate_scores: list[float] = field(default_factory=list)
    mated_pairs: list[float] = field(default_factory=list)
    nonmated_pairs: list[float] = field(default_factory=list)
    nonmated_top: list[float] = field(default_factory=list)


def split(
    root: Path, config: EvalConfig
) -> tuple[dict[str, list[Path]], dict[str, list[Path]], list[Path]]:
    """Return (gallery photos by person, mated probes by person, non-mated probes)."""
    people = photos(root)
    names = sorted(people)
    order = np.random.default_rng(config.seed).permutation(len(names))
    held_count = round(config.holdout * len(names)) if len(names) >= 3 else 0
    held = {names[i] for i in order[:held_count]}
    gallery = {p: f[: config.gallery_per_person] for p, f in people.items() if p not in held}
    mated = {p: f[config.gallery_per_person :] for p, f in people.items() if p not in held}
    nonmated = [f for p in sorted(held) for f in people[p]]
    return gallery, mated, nonmated


def run(
    root: Path, base: Settings, config: EvalConfig, analyzer: FaceAnalyzer | None = None
) -> dict[str, Any]:
    """Run the protocol in a temporary database and return the report (JSON-ready)."""
    gallery, mated, nonmated = split(root, config)
    analyzer = analyzer or FaceAnalyzer(base)
    skipped: list[dict[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="facedb-eval-") as tmp:
        settings = Settings(
            data_dir=Path(tmp),
            database_url=f"sqlite:///{Path(tmp) / 'eval.sqlite3'}",
            model_dir=base.models_path,
            detector=base.detector,
            detect_max_side=base.detect_max_side,
            min_face_size=base.min_face_size,
            min_confidence=base.min_confidence,
        )
        upgrade(settings.database_url)
        db = FaceDB(settings, analyzer=analyzer)
        db.start(load_models=True)
        try:
            enrolled, stored = _enroll(db, gallery, skipped, config)
            # A person none of whose gallery photos could be enrolled has no mate: their
            # photos count as non-mated searches.
            probes: list[tuple[str | None, Path]] = [
                (p if p in enrolled else None, path) for p, files in mated.items() for path in files
            ]
            probes += [(None, path) for path in nonmated]
            scores = _search(db, probes, enrolled, skipped, config)
        finally:
            db.close()
    return report(root, config, scores, len(enrolled), stored, len(probes), skipped)


def _enroll(
    db: FaceDB, gallery: dict[str, list[Path]], skipped: list[dict[str, str]], config: EvalConfig
) -> tuple[dict[str, str], int]:
    """Enroll the gallery; return ({person folder: person id}, photos stored)."""
    enrolled: dict[str, str] = {}
    stored = 0
    for name, files in tqdm(
        gallery.items(), desc="enroll", unit="person", disable=not config.progress
    ):
        person = create_person(db, {"name": name, "external_ref": name})
        uploads = [Upload(str(f), io.BytesIO(f.read_bytes())) for f in files]
        outcomes = enroll(db, person.id, uploads).results
        for outcome in outcomes:
            if outcome.error is not None:
                skipped.append(
                    {"path": outcome.filename, "stage": "gallery", "reason": outcome.error.code}
                )
        ok = sum(o.status == UploadStatus.STORED for o in outcomes)
        stored += ok
        if ok:
            enrolled[name] = person.id
    return enrolled, stored


def _search(
    db: FaceDB,
    probes: list[tuple[str | None, Path]],
    enrolled: dict[str, str],
    skipped: list[dict[str, str]],
    config: EvalConfig,
) -> Scores:
    scores = Scores()
    k = max(1, len(enrolled))
    bar = tqdm(total=len(probes), desc="search", unit="photo", disable=not config.progress)
    for start in range(0, len(probes), config.batch):
        chunk = probes[start : start + config.batch]
        results = db.analyzer.analyze_many([path.read_bytes() for _, path in chunk])
        for (person, path), result in zip(chunk, results, strict=True):
            bar.update()
            if isinstance(result, FaceDBError):
                skipped.append({"path": str(path), "stage": "probe", "reason": result.code})
                continue
            if not result:
                skipped.append({"path": str(path), "stage": "probe", "reason": "no_face"})
                continue
            face = max(result, key=lambda f: f.box.w * f.box.h)
            ranked = rank_identities(db, face.embedding, k, 1.0, SearchFilters())
            mate_id = enrolled.get(person) if person else None
            if mate_id is None:
                scores.nonmated_top.append(ranked[0].score if ranked else -1.0)
                scores.nonmated_pairs.extend(c.score for c in ranked)
                continue
            rank = next((i + 1 for i, c in enumerate(ranked) if c.person.id == mate_id), 0)
            scores.mate_ranks.append(rank)
            mate_score = ranked[rank - 1].score if rank else -1.0
            scores.mate_scores.append(mate_score)
            scores.mated_pairs.append(mate_score)
            scores.nonmated_pairs.extend(c.score for c in ranked if c.person.id != mate_id)
    bar.close()
    return scores


def report(
    root: Path,
    config: EvalConfig,
    scores: Scores,
    gallery_persons: int,
    gallery_photos: int,
    probe_count: int,
    skipped: list[dict[str, str]],
) -> dict[str, Any]:
    mated = np.asarray(scores.mated_pairs, dtype=np.float64)
    nonmated = np.asarray(scores.nonmated_pairs, dtype=np.float64)
    ranks = np.asarray(scores.mate_ranks, dtype=np.int64)
    top_is_mate = ranks == 1
    chosen = metrics.tar_at_far(mated, nonmated, config.target_far)
    return {
        "schema": SCHEMA,
        "dataset": str(root),
        "seed": config.seed,
        "gallery_per_person": config.gallery_per_person,
        "holdout": config.holdout,
        "gallery": {"persons": gallery_persons, "photos": gallery_photos},
        "probes": {
            "total": probe_count,
            "mated": len(ranks),
            "nonmated": len(scores.nonmated_top),
        },
        "skipped": skipped,
        "rank1": round(metrics.rank_rate(ranks, 1), 6),
        "rank5": round(metrics.rank_rate(ranks, 5), 6),
        "tar_at_far": {
            str(far): metrics.tar_at_far(mated, nonmated, far).as_dict() for far in FARS
        },
        "fnir_at_fpir": {
            str(fpir): metrics.fnir_at_fpir(
                top_is_mate, np.asarray(scores.mate_scores), np.asarray(scores.nonmated_top), fpir
            ).as_dict()
            for fpir in FPIRS
        },
        "threshold": {
            "far": config.target_far,
            "value": round(chosen.threshold, 5),
            "achieved_far": round(chosen.achieved, 6),
            "tar": round(chosen.rate, 6),
            "measurable": chosen.measurable,
        },
        "scores": {
            "mated_pairs": len(mated),
            "nonmated_pairs": len(nonmated),
            "mated_median": round(float(np.median(mated)), 5) if len(mated) else None,
            "nonmated_median": round(float(np.median(nonmated)), 5) if len(nonmated) else None,
            "mated": [round(float(s), 5) for s in mated],
            "nonmated": [round(float(s), 5) for s in nonmated],
        },
    }

"""Reviewer workload: how many pairs a reviewer reads, in the queue's order, to find the
true links; the order by raw score against the order by evidence, in the same run.

Run: .venv/bin/python -m bench.queue_bench [--devsets ../shared/devsets] [--lag DIR]
     [--recipe NAME] [--write]

Each recipe (FACEDB_RECIPE; the default's unless named) writes its own section.

The construction (real photos, the real pipeline and service, SQLite): three folds, each of
100 identities drawn from `lag-dev-ids.txt` (LAG, fetched outside the repository: see the
devsets README) and 300 lfw-dev photos of other people. Each identity's childhood photos
make one missing person; each of its adult photos is a found person of its own, as is each
stranger photo. Cross-matching runs on enrollment, as in service. A true link is a pair of
an identity's missing record with a found record of its adult photo; recall is the share of
those in the queue. LAG gives no birth dates, so no age check applies here (bench/age_bands.py
measures it); the gender flag is measured a second time after recording each identity's
gender from the confident estimates of its adult photos (LAG has no gender labels: an
optimistic proxy for a recorded gender, said as such). Last, the queue is emptied and made
again by the batch job (the paired baseline); then the age axis is removed and `facedb
crossmatch` run on that queue (what an operator gets: pending pairs stay, new ones join,
better scores raise them), and the queue is made again from empty.
"""

from __future__ import annotations

import io
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from bench.common import arguments, report, table
from bench.datasets import add_devsets, lag_dev_ids
from bench.serving import sqlite_services
from facedb.config import Settings
from facedb.domain import EstimatedGender, JobKind, MatchState, PairOrder, PersonStatus
from facedb.errors import AgeAxisRefused
from facedb.pipeline.age_axis import AxisGuard
from facedb.pipeline.analyzer import FaceAnalyzer
from facedb.records import PairFilter, PairRecord
from facedb.services.uploads import Upload
from facedb.trail.jobs import Job
from facedb.wiring import Services

SECTION = "## Review queue: pairs read to find the true links ({recipe})"
FOLDS, IDENTITIES, STRANGERS, SEED = 3, 100, 300, 7
SHARES = (0.5, 0.8)


@dataclass(frozen=True)
class Fold:
    identities: list[str]
    strangers: list[Path]


@dataclass(frozen=True)
class Workload:
    pairs: int
    true_links: int
    possible: int
    read_to: dict[float, int | None]  # pairs read to reach each share of the possible links
    first_100: float  # share of true links among the first 100 pairs

    def row(self, label: str) -> list[str]:
        reads = [str(self.read_to[s]) if self.read_to[s] else "not reached" for s in SHARES]
        return [label, str(self.pairs), f"{self.true_links / self.possible:.3f}", *reads,
                f"{self.first_100:.2f}"]  # fmt: skip


def folds(devsets: Path) -> list[Fold]:
    ids = lag_dev_ids(devsets)
    lfw = devsets / "lfw-dev"
    others = sorted((lfw / "people").glob("*/*.jpg")) + sorted((lfw / "distractors").glob("*.jpg"))
    rng = np.random.default_rng(SEED)
    ids = [ids[i] for i in rng.permutation(len(ids))]
    others = [others[i] for i in rng.permutation(len(others))]
    return [Fold(ids[f * IDENTITIES : (f + 1) * IDENTITIES],
                 others[f * STRANGERS : (f + 1) * STRANGERS]) for f in range(FOLDS)]  # fmt: skip


def enroll(services: Services, name: str, status: PersonStatus, photos: list[Path]) -> str | None:
    """Create a person from their photos; None (and no person) if no photo has one face."""
    person = services.persons.create({"name": name[:200], "status": status})
    uploads = [Upload(p.name, io.BytesIO(p.read_bytes())) for p in photos]
    if services.enrollment.enroll(person.id, uploads).stored == 0:
        services.persons.delete(person.id)
        return None
    return person.id


QUALITY_WEIGHTS = (0.02, 0.05, 0.1)  # evidence added per unit of quality missing (0-1)


def workload(services: Services, order: PairOrder, truth: set[tuple[str, str]]) -> Workload:
    items, total = services.review.page(PairFilter(state=MatchState.PENDING), order, 10**6, 0)
    return counted(items, total, truth)


def by_quality(services: Services, truth: set[tuple[str, str]]) -> dict[str, Workload]:
    """The evidence order with each pair's evidence raised by how low the lower of its two
    faces' quality is (a low-quality true pair scores low for its photos, not its person),
    at each weight; warnings still come first, as in the queue."""
    items, total = services.review.page(
        PairFilter(state=MatchState.PENDING), PairOrder.EVIDENCE, 10**6, 0
    )

    def low(p: PairRecord) -> float:
        known = [s.quality.score for s in (p.missing, p.found) if s.quality is not None]
        return 1.0 - min(known) / 100 if known else 0.0

    return {
        f"quality {w}": counted(
            sorted(items, key=lambda p, w=w: (p.warnings, -(p.evidence + w * low(p)), p.id)),
            total,
            truth,
        )
        for w in QUALITY_WEIGHTS
    }


def counted(items: list[PairRecord], total: int, truth: set[tuple[str, str]]) -> Workload:
    """The workload of reading ``items`` in their order."""
    hits = np.array([(p.missing.person_id, p.found.person_id) in truth for p in items])
    found = np.cumsum(hits)
    read_to = {}
    for share in SHARES:
        reached = np.nonzero(found >= np.ceil(share * len(truth)))[0]
        read_to[share] = int(reached[0]) + 1 if len(reached) else None
    return Workload(total, int(hits.sum()), len(truth), read_to, float(hits[:100].mean()))


def run_fold(analyzer: FaceAnalyzer, fold: Fold, lag: Path) -> tuple[dict[str, Workload], str]:
    """Return the workloads of each queue order, and what removing the age axis did."""
    with tempfile.TemporaryDirectory() as tmp:
        services = sqlite_services(Path(tmp), analyzer, model_dir=analyzer.settings.models_path,
                                   recipe=analyzer.settings.recipe)  # fmt: skip
        truth: set[tuple[str, str]] = set()
        adults: dict[str, list[str]] = {}  # a missing record's id → its found records' ids
        for name in fold.identities:
            young = sorted(p for p in (lag / name / "y").glob("*") if p.is_file())
            missing = enroll(services, f"{name} (missing)", PersonStatus.MISSING, young)
            for photo in sorted(p for p in (lag / name).glob("*") if p.is_file()):
                found = enroll(services, f"{name} {photo.name}", PersonStatus.FOUND, [photo])
                if found is not None and missing is not None:
                    adults.setdefault(missing, []).append(found)
                    truth.add((missing, found))
        for photo in fold.strangers:
            enroll(services, f"stranger {photo.name}", PersonStatus.FOUND, [photo])
        out: dict[str, Workload] = {order: workload(services, order, truth) for order in (PairOrder.SCORE,
                                                                      PairOrder.EVIDENCE)}  # fmt: skip
        record_genders(services, adults)
        out["evidence, genders recorded"] = workload(services, PairOrder.EVIDENCE, truth)
        out.update(by_quality(services, truth))
        requeue(services)  # the batch job's queue on the same embeddings: the paired baseline
        out["batch, genders recorded"] = workload(services, PairOrder.EVIDENCE, truth)
        said = remove_age_axis(services)
        services.crossmatch.run_batch(Job(kind=JobKind.CROSSMATCH, params={}))
        out["age axis removed, live queue"] = workload(services, PairOrder.EVIDENCE, truth)
        requeue(services)
        out["age axis removed, genders recorded"] = workload(services, PairOrder.EVIDENCE, truth)
        services.close()
    return out, said


def requeue(services: Services) -> None:
    """Empty the review queue and cross-match both registers again with the batch job."""
    with services.store.engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM match_candidates"))
    services.crossmatch.run_batch(Job(kind=JobKind.CROSSMATCH, params={}))


def remove_age_axis(services: Services) -> str:
    """Remove the age axis as `facedb reindex --remove-age-axis` does; where the default
    guard refuses, say why and remove it with only the childhood/adulthood share waived (to
    measure what the share rule costs). Return what happened, in words."""
    said = ""
    job = Job(kind=JobKind.REINDEX, params={})
    try:
        services.reindex.run(job, remove_age_axis=True)
    except AgeAxisRefused as exc:
        said = f"refused by default ({exc.message}); "
        services.reindex.run(job, remove_age_axis=True, guard=AxisGuard(min_share=0.0))
    axis = services.audit.recent(1, None, None)[0].results[0]["age_axis"]
    return (
        f"{said}learned from {axis['faces']} faces, {axis['children']} under 13 and "
        f"{axis['adults']} 20 or over, |r| {axis['age_correlations'][0]:.2f}"
    )


def record_genders(services: Services, adults: dict[str, list[str]]) -> None:
    """Give each missing record the gender its adult photos are confidently read as."""
    for missing, found_ids in adults.items():
        read = Counter(
            f.gender
            for found in found_ids
            for p in services.enrollment.photos_of(found)
            for f in p.faces
            if f.gender in (EstimatedGender.MALE, EstimatedGender.FEMALE)
        )
        if read:
            services.persons.update(missing, {"gender": read.most_common(1)[0][0].value})


def main() -> None:
    parser = arguments(__doc__)
    add_devsets(parser, lag=True)
    parser.add_argument("--recipe", default="", help="FACEDB_RECIPE (default: the default)")
    args = parser.parse_args()
    analyzer = FaceAnalyzer(Settings(recipe=args.recipe))
    recipe = analyzer.recipes.name_of(analyzer.target_version)
    section = SECTION.format(recipe=recipe)
    analyzer.load()
    labels = {PairOrder.SCORE: "by score (before)", PairOrder.EVIDENCE: "by evidence (now)",
              "evidence, genders recorded": "by evidence, genders recorded",
              **{f"quality {w}": f"the same, evidence + {w} x (1 - lower quality / 100)"
                 for w in QUALITY_WEIGHTS},
              "batch, genders recorded": "the same, queue made again by `facedb crossmatch`",
              "age axis removed, live queue":
                  "the same, age axis removed, then `facedb crossmatch` on that queue",
              "age axis removed, genders recorded":
                  "the same, age axis removed, queue made again"}  # fmt: skip
    rows, notes = [], []
    for n, fold in enumerate(folds(args.devsets)):
        results, said = run_fold(analyzer, fold, args.lag)
        notes.append(f"- fold {n + 1}: {said}")
        for key, result in results.items():
            rows.append(result.row(f"fold {n + 1}, {labels[key]}"))
            print(rows[-1], flush=True)
    lines = [
        section, "",
        "Command: `.venv/bin/python -m bench.queue_bench --write` (real photos and models, "
        f"SQLite, recipe `{recipe}`, default settings: 10 candidates per face, floor "
        f"{analyzer.target.candidate_threshold}). Each fold: 100 LAG "
        "identities (childhood photos → one missing record; each adult photo → a found "
        "record) and 300 lfw-dev strangers (each photo a found record). Pairs read: the "
        "position in the pending queue at which 50% / 80% of the possible true links have "
        "been met; 'not reached' when the queue holds fewer.", "",
        *table(["fold, order", "pending pairs", "recall", "pairs to 50%", "pairs to 80%",
                "first 100 true"], rows), "",
        "The age axis (`facedb reindex --remove-age-axis`), learned from each fold's whole "
        "database (both registers and the strangers):", "", *notes,
    ]  # fmt: skip
    report("\n".join(lines) + "\n", section, args.write)


if __name__ == "__main__":
    main()

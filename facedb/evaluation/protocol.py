"""The evaluation protocols: enroll a gallery into a fresh database, search with the rest.

Every protocol runs the service itself (the enrollment and search code, a temporary SQLite
database) and returns the same report.

- Closed-set with hold-out (default): DIR holds one folder of photos per person. With a
  seeded shuffle, a share of the persons (``holdout``) is kept out of the gallery: their
  photos are the non-mated searches. Of every other person the first
  ``gallery_per_person`` photos (by file name) are enrolled and the rest are searched.
- Open-set with distractors (``distractors``): also enroll every photo of the distractor
  folder, each as its own person (none of them is among DIR's persons).
- Cross-age (``ages``): each photo's age comes from a CSV (``path,age`` or
  ``path,taken_at,birth_date``) or from its file name (``..._12.jpg``, FG-NET's
  ``001A12.JPG``); each person's earliest photo is enrolled and their latest searched, and
  ranks are reported by the years between the two.
- Young/adult (``young``): the Large Age-Gap layout, ``DIR/<person>/*`` adult photos and
  ``DIR/<person>/<young>/*`` childhood photos of the same person. Every childhood photo is
  enrolled (a person is scored by their best photo) and every adult photo searched; no ages
  are known. ``only`` names the persons to read (one folder name per line).

The age axis is treated as the service treats it (FACEDB_AGE_AXIS, ``services/age_axis.py``):
once the gallery is enrolled it is learned and removed where the gallery passes the guard,
and the report says which. ``remove_age_axis`` asks for it whatever the setting (refused,
with its reason, when the gallery's ages do not give one).

Non-mated searches: the searches of held-out persons, and every mated search scored
without its mate (its best non-mate), as if the person had not been enrolled.
"""

from __future__ import annotations

import csv
import io
import re
import tempfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from facedb.config import Settings
from facedb.domain import IndexBackend, JobKind, UploadStatus
from facedb.errors import FaceDBError, InvalidInput
from facedb.evaluation import discard, metrics
from facedb.evaluation.sizes import Above, by_size, shuffled
from facedb.models.sample_data import photos
from facedb.pipeline.base import Analyzer
from facedb.services.search import SearchFilters
from facedb.services.uploads import Upload
from facedb.store.db import upgrade
from facedb.trail.jobs import Job
from facedb.wiring import Services, build

SCHEMA = "facedb-eval/2"
FARS = (0.01, 0.001)
FPIRS = (0.01, 0.003, 0.001)
RANKS = (1, 5, 10, 20)
GAP_BUCKETS = ((0, 5), (5, 10), (10, 20), (20, 200))
DISTRACTOR = "distractor/"  # the gallery name of a distractor's photo
_AGE_IN_NAME = re.compile(r"(?:_|[aA])(\d{1,3})[a-z]?$")


@dataclass(frozen=True)
class EvalConfig:
    gallery_per_person: int = 3
    holdout: float = 0.2
    seed: int = 0
    target_far: float = 0.001
    batch: int = 16
    progress: bool = True
    distractors: Path | None = None
    ages: Path | None = None  # cross-age: a CSV of photo ages
    ages_in_names: bool = False  # cross-age: ages from the file names
    bootstrap: int = 1000
    model_version: str | None = None  # measure another recipe (default: the chosen one)
    young: str | None = None  # young/adult: the subfolder of each person's childhood photos
    only: Path | None = None  # young/adult: a file naming the persons to read
    remove_age_axis: bool = False  # learn the gallery's age axis and remove it before searching
    sizes: tuple[int, ...] = ()  # with distractors: registers of these many of them (sizes.py)

    @property
    def cross_age(self) -> bool:
        return self.ages is not None or self.ages_in_names


@dataclass
class Probe:
    person: str | None  # the gallery person it should find; None: non-mated
    path: Path
    gap: float | None = None  # cross-age: years between the enrolled and searched photo


@dataclass
class Scores:
    """What the searches produced, before any rate is computed."""

    mate_ranks: list[int] = field(default_factory=list)
    mate_scores: list[float] = field(default_factory=list)
    best_nonmate: list[float] = field(default_factory=list)  # per mated search
    gaps: list[float | None] = field(default_factory=list)  # per mated search
    mated_pairs: list[float] = field(default_factory=list)
    nonmated_pairs: list[float] = field(default_factory=list)
    nonmated_top: list[float] = field(default_factory=list)  # held-out persons' searches
    above: list[Above] = field(default_factory=list)  # per mated search, with --sizes
    distractors: int = 0  # distractors enrolled
    # Per mated pair (parallel to mated_pairs): the lower of its two faces' quality (NaN:
    # one was not measured), and whose search it was.
    pair_quality: list[float] = field(default_factory=list)
    pair_person: list[str] = field(default_factory=list)


@dataclass
class Plan:
    gallery: dict[str, list[Path]]
    probes: list[Probe]


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


def plan(root: Path, config: EvalConfig) -> Plan:
    """Return who is enrolled with which photos, and the searches."""
    if config.young is not None:
        result = young_adult_plan(root, config.young, read_names(config.only))
    elif config.cross_age:
        result = cross_age_plan(root, photo_ages(root, config.ages))
    else:
        gallery, mated, nonmated = split(root, config)
        probes = [Probe(p, f) for p, files in mated.items() for f in files]
        result = Plan(gallery, probes + [Probe(None, f) for f in nonmated])
    if config.distractors is not None:
        for path in sorted(config.distractors.iterdir()):
            if path.suffix.lower() in {".jpg", ".jpeg", ".png", ".webp"}:
                result.gallery[f"{DISTRACTOR}{path.name}"] = [path]
    return result


def photo_ages(root: Path, source: Path | None) -> dict[Path, float]:
    """Return each photo's age at the photo, from a CSV, or from the file names (None)."""
    ages: dict[Path, float] = {}
    if source is None:
        for files in photos(root).values():
            for path in files:
                match = _AGE_IN_NAME.search(path.stem)
                if match:
                    ages[path.resolve()] = float(match.group(1))
        return ages
    with source.open(newline="") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            path = (root / (row.get("path") or "")).resolve()
            try:
                if row.get("age"):
                    ages[path] = float(row["age"])
                elif row.get("taken_at") and row.get("birth_date"):
                    days = date.fromisoformat(row["taken_at"]) - date.fromisoformat(
                        row["birth_date"]
                    )
                    ages[path] = days.days / 365.25
            except ValueError as exc:
                raise InvalidInput(f"{source} line {line}: {exc}") from None
    return ages


def cross_age_plan(root: Path, ages: dict[Path, float]) -> Plan:
    """Enroll each person's earliest photo and search with their latest."""
    gallery: dict[str, list[Path]] = {}
    probes: list[Probe] = []
    for person, files in photos(root).items():
        aged = sorted((ages[f.resolve()], f) for f in files if f.resolve() in ages)
        if len(aged) < 2 or aged[-1][0] <= aged[0][0]:
            continue
        gallery[person] = [aged[0][1]]
        probes.append(Probe(person, aged[-1][1], gap=aged[-1][0] - aged[0][0]))
    if not probes:
        raise InvalidInput(
            f"no person in {root} has two photos of different known ages; give ages in a "
            "CSV (path,age) or in the file names (name_AGE.jpg)"
        )
    return Plan(gallery, probes)


def read_names(source: Path | None) -> set[str] | None:
    """Return the folder names listed in ``source`` (one per line), or None for all."""
    if source is None:
        return None
    return {line.strip() for line in source.read_text().splitlines() if line.strip()}


def young_adult_plan(root: Path, young: str, only: set[str] | None) -> Plan:
    """Enroll every childhood photo (``<person>/<young>/``), search with every adult one."""
    gallery: dict[str, list[Path]] = {}
    probes: list[Probe] = []
    for person, adult in photos(root).items():
        if only is not None and person not in only:
            continue
        childhood = photos(root / person).get(young, [])
        if childhood:
            gallery[person] = childhood
            probes.extend(Probe(person, f) for f in adult)
    if not probes:
        raise InvalidInput(
            f"no person in {root} has both adult photos and childhood photos in a "
            f"'{young}' subfolder" + (" among the names given" if only is not None else "")
        )
    if only is not None and (missing := only - set(gallery)):
        raise InvalidInput(
            f"{len(missing)} of the persons named are not in {root} with photos of both "
            f"ages (e.g. {sorted(missing)[0]}); check the folder and the list"
        )
    return Plan(gallery, probes)


def run(
    root: Path, base: Settings, config: EvalConfig, analyzer: Analyzer | None = None
) -> dict[str, Any]:
    """Run the protocol in a temporary database and return the report (JSON-ready)."""
    layout = plan(root, config)
    skipped: list[dict[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="facedb-eval-") as tmp:
        settings = base.model_copy(
            update={
                "data_dir": Path(tmp),
                "database_url": f"sqlite:///{Path(tmp) / 'eval.sqlite3'}",
                "model_dir": base.models_path,
                # A throw-away database gets a throw-away index, never a shared collection.
                "index_backend": IndexBackend.FAISS,
            }
        )
        upgrade(settings.database_url)
        services = build(settings, analyzer)
        before = services.analyzer.model_version
        services.start(load_models=True)
        if config.model_version is not None:
            _pin(services, services.analyzer.recipes.chosen(config.model_version).version)
        try:
            enrolled, stored = _enroll(services, layout.gallery, skipped, config)
            if config.remove_age_axis:  # asked for: a refusal is an error
                job = Job(kind=JobKind.REINDEX, params={"remove_age_axis": True})
                services.reindex.run(job, remove_age_axis=True)
            axis = services.age_axis.consider()  # as the service would (FACEDB_AGE_AXIS)
            # A person none of whose gallery photos could be enrolled has no mate: their
            # photos count as non-mated searches.
            probes = [
                Probe(p.person if p.person in enrolled else None, p.path, p.gap)
                for p in layout.probes
            ]
            scores = _search(services, probes, enrolled, skipped, config)
            version = services.index.model_version
            configured = {
                "match_threshold": services.index.match_threshold,
                "candidate_threshold": services.index.candidate_threshold,
            }
        finally:
            services.analyzer.use(before)
            services.close()
    counts = (len(enrolled), stored, len(probes))
    out = report(root, config, configured, version, scores, counts, skipped)
    return {**out, "age_axis": axis.reason}


def _pin(services: Services, model_version: str) -> None:
    """Make the (empty) evaluation database embed and search with another recipe."""
    with services.store.unit() as unit:
        unit.generations.switch(1, services.analyzer.model_name, model_version)
    services.index.rebuild()


def _enroll(
    services: Services,
    gallery: dict[str, list[Path]],
    skipped: list[dict[str, str]],
    config: EvalConfig,
) -> tuple[dict[str, str], int]:
    """Enroll the gallery; return ({person folder: person id}, photos stored)."""
    enrolled: dict[str, str] = {}
    stored = 0
    for name, files in tqdm(
        gallery.items(), desc="enroll", unit="person", disable=not config.progress
    ):
        person = services.persons.create({"name": name[:200], "external_ref": name[:100]})
        uploads = [Upload(str(f), io.BytesIO(f.read_bytes())) for f in files]
        outcomes = services.enrollment.enroll(person.id, uploads).results
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
    services: Services,
    probes: list[Probe],
    enrolled: dict[str, str],
    skipped: list[dict[str, str]],
    config: EvalConfig,
) -> Scores:
    """Search every probe. A mated probe whose photo shows no face counts as a miss."""
    scores = Scores()
    k = max(1, len(enrolled))
    places = shuffled(sorted(n for n in enrolled if n.startswith(DISTRACTOR)), config.seed)
    place_of = {enrolled[n]: p for n, p in places.items()}
    scores.distractors = len(places)
    bar = tqdm(total=len(probes), desc="search", unit="photo", disable=not config.progress)
    for start in range(0, len(probes), config.batch):
        chunk = probes[start : start + config.batch]
        results = services.analyzer.analyze_many([p.path.read_bytes() for p in chunk])
        for probe, result in zip(chunk, results, strict=True):
            bar.update()
            mate_id = enrolled.get(probe.person) if probe.person else None
            if isinstance(result, FaceDBError) or not result:
                reason = result.code if isinstance(result, FaceDBError) else "no_face"
                skipped.append({"path": str(probe.path), "stage": "probe", "reason": reason})
                if mate_id is not None:  # the operator's search found nothing: a miss
                    _mated(scores, probe, 0, -1.0, -1.0)
                    if config.sizes:
                        scores.above.append(Above(0, ()))
                continue
            face = max(result, key=lambda f: f.box.w * f.box.h)
            ranked = services.search.rank([face.embedding], k, 1.0, SearchFilters())[0]
            if mate_id is None:
                scores.nonmated_top.append(ranked[0].score if ranked else -1.0)
                scores.nonmated_pairs.extend(c.score for c in ranked)
                continue
            rank = next((i + 1 for i, c in enumerate(ranked) if c.person.id == mate_id), 0)
            others = [c.score for c in ranked if c.person.id != mate_id]
            mate_score = ranked[rank - 1].score if rank else -1.0
            _mated(scores, probe, rank, mate_score, max(others, default=-1.0))
            if config.sizes:
                ahead = [place_of.get(c.person.id) for c in ranked[: max(rank - 1, 0)]]
                own = 1 + sum(p is None for p in ahead)
                scores.above.append(
                    Above(own if rank else 0, tuple(p for p in ahead if p is not None))
                )
            scores.mated_pairs.append(mate_score)
            scores.nonmated_pairs.extend(others)
            mate = ranked[rank - 1].face.quality if rank else None
            scores.pair_quality.append(
                min(face.quality.score, mate.score) if face.quality and mate else float("nan")
            )
            scores.pair_person.append(probe.person or "")
    bar.close()
    return scores


def _mated(scores: Scores, probe: Probe, rank: int, mate: float, best_other: float) -> None:
    scores.mate_ranks.append(rank)
    scores.mate_scores.append(mate)
    scores.best_nonmate.append(best_other)
    scores.gaps.append(probe.gap)


def report(
    root: Path,
    config: EvalConfig,
    thresholds: dict[str, float],
    model_version: str,
    scores: Scores,
    counts: tuple[int, int, int],
    skipped: list[dict[str, str]],
) -> dict[str, Any]:
    """Return the rates, each with a bootstrap 95% interval (searches resampled)."""
    gallery_persons, gallery_photos, probe_count = counts
    mated = np.asarray(scores.mated_pairs, dtype=np.float64)
    nonmated = np.asarray(scores.nonmated_pairs, dtype=np.float64)
    ranks = np.asarray(scores.mate_ranks, dtype=np.int64)
    mate_scores = np.asarray(scores.mate_scores, dtype=np.float64)
    # Non-mated searches: held-out persons', and each mated search without its mate.
    nonmated_top = np.asarray(scores.nonmated_top + scores.best_nonmate, dtype=np.float64)
    chosen = metrics.tar_at_far(mated, nonmated, config.target_far)
    rng = np.random.default_rng(config.seed)
    n_boot = config.bootstrap

    def rank_entry(k: int, subset: np.ndarray | None = None) -> dict[str, float | None]:
        r = ranks if subset is None else ranks[subset]
        return metrics.with_interval(lambda idx: metrics.rank_rate(r[idx], k), len(r), n_boot, rng)

    def fnir_entry(fpir: float) -> dict[str, Any]:
        point = metrics.fnir_at_fpir(ranks == 1, mate_scores, nonmated_top, fpir)
        entry: dict[str, Any] = point.as_dict()
        entry.update(
            metrics.interval_of(
                lambda mi, ni: (
                    metrics.fnir_at_fpir(
                        ranks[mi] == 1, mate_scores[mi], nonmated_top[ni], fpir
                    ).rate
                ),
                (len(ranks), len(nonmated_top)),
                n_boot,
                rng,
            )
        )
        return entry

    out: dict[str, Any] = {
        "schema": SCHEMA,
        "dataset": str(root),
        "protocol": _protocol_name(config),
        "seed": config.seed,
        "gallery_per_person": config.gallery_per_person,
        "holdout": config.holdout,
        "distractors": str(config.distractors) if config.distractors else None,
        "gallery": {"persons": gallery_persons, "photos": gallery_photos},
        "probes": {
            "total": probe_count,
            "mated": len(ranks),
            "nonmated": len(scores.nonmated_top),
            "nonmated_searches": len(nonmated_top),
        },
        "skipped": skipped,
        "model_version": model_version,
        **{f"rank{k}": round(metrics.rank_rate(ranks, k), 6) for k in RANKS},
        "ranks": {str(k): rank_entry(k) for k in RANKS},
        "tar_at_far": {
            str(far): metrics.tar_at_far(mated, nonmated, far).as_dict() for far in FARS
        },
        "fnir_at_fpir": {str(fpir): fnir_entry(fpir) for fpir in FPIRS},
        "threshold": {
            "far": config.target_far,
            "value": round(chosen.threshold, 5),
            "achieved_far": round(chosen.achieved, 6),
            "tar": round(chosen.rate, 6),
            "measurable": chosen.measurable,
        },
        "configured": {
            name: _at_threshold(value, mated, nonmated, ranks, mate_scores, nonmated_top)
            for name, value in thresholds.items()
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
    out["quality"] = _discard(scores, mated, nonmated, config.target_far, n_boot)
    if config.sizes:
        out["by_size"] = _by_size(scores, config, gallery_persons, rng)
    if config.cross_age:
        gaps = np.asarray([g if g is not None else np.nan for g in scores.gaps])
        out["by_age_gap"] = [
            {
                "years": f"{low}-{high - 1}" if high < 200 else f"{low}+",
                "searches": int(subset.sum()),
                "mate_score_median": (
                    round(float(np.median(mate_scores[subset])), 5) if subset.any() else None
                ),
                **{f"rank{k}": rank_entry(k, subset) for k in RANKS},
            }
            for low, high in GAP_BUCKETS
            for subset in [(gaps >= low) & (gaps < high)]
        ]
    return out


def _discard(scores: Scores, mated: np.ndarray, nonmated: np.ndarray, far: float,
             boot: int) -> dict[str, Any] | None:  # fmt: skip
    """Error versus discard of the mated pairs by their quality (the lower of the two
    faces'), at the threshold where a share ``far`` of the non-mated pairs pass."""
    quality = np.asarray(scores.pair_quality, dtype=np.float64)
    known = np.isfinite(quality)
    if not known.any() or not len(nonmated):
        return None
    threshold = discard.threshold_at(nonmated, far)
    missed = mated[known] < threshold
    people = np.unique(np.asarray(scores.pair_person)[known], return_inverse=True)[1]
    d = discard.discard(missed, quality[known])
    iv = discard.bootstrap(missed, quality[known], people, boot)
    return {
        "fmr": far,
        "threshold": round(threshold, 5),
        "pairs": int(known.sum()),
        "fnmr": round(d.fnmr, 5),
        "set_aside": {
            str(f): {
                "fnmr": round(d.kept[f], 5),
                "interval": [round(x, 5) for x in iv[f"kept_{f}"]],
            }
            for f in discard.FRACTIONS
        },
        # None where no pair missed (no ratio to take)
        "lowest_10_ratio": _rounded(d.lowest_ratio),
        "lowest_10_interval": [_rounded(x) for x in iv["lowest_ratio"]],
        "ceiling": _rounded(d.ceiling),
    }


def _rounded(value: float) -> float | None:
    return round(value, 3) if np.isfinite(value) else None


def _by_size(
    scores: Scores, config: EvalConfig, gallery_persons: int, rng: np.random.Generator
) -> dict[str, Any]:
    """Identification in registers of each size asked for (``sizes.py``); a size beyond the
    distractors enrolled is left out, saying so."""
    measured = sorted({s for s in config.sizes if s <= scores.distractors})
    out = by_size(
        scores.above,
        measured,
        gallery_persons - scores.distractors,
        lambda rate, n: metrics.with_interval(rate, n, config.bootstrap, rng),
    )
    out["left_out"] = sorted({s for s in config.sizes if s > scores.distractors})
    out["distractors_enrolled"] = scores.distractors
    return out


def _at_threshold(
    threshold: float,
    mated: np.ndarray,
    nonmated: np.ndarray,
    ranks: np.ndarray,
    mate_scores: np.ndarray,
    nonmated_top: np.ndarray,
) -> dict[str, float]:
    """How a configured threshold performs: TAR/FAR over pairs, FNIR/FPIR over searches."""
    hit = (ranks == 1) & (mate_scores >= threshold)
    return {
        "threshold": round(float(threshold), 5),
        "tar": round(metrics.share_at_or_above(mated, threshold), 6),
        "far": round(metrics.share_at_or_above(nonmated, threshold), 6),
        "fnir": round(float(1.0 - hit.mean()) if len(hit) else 1.0, 6),
        "fpir": round(metrics.share_at_or_above(nonmated_top, threshold), 6),
        "mates_at_or_above": round(metrics.share_at_or_above(mate_scores, threshold), 6),
    }


def _protocol_name(config: EvalConfig) -> str:
    if config.young is not None:
        return "young-adult"
    if config.cross_age:
        return "cross-age"
    return "open-set" if config.distractors is not None else "hold-out"

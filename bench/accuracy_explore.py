"""Explore how FaceNet is fed, on lfw-dev: the table behind the chosen embedding pipeline.

Run: .venv/bin/python -m bench.accuracy_explore [--devsets ../shared/devsets] [--write]

Each photo is decoded and detected once (the service's own decoder and detector); every
variant then cuts its chip from the same detection and embeds it with the same FaceNet.
Protocol (lfw-dev README): gallery = first photo of each of the 100 people + 400
distractors, probes = the other 400 photos; a probe's non-mated score is its best non-mate;
no face found is a miss. With --write the table replaces its section of docs/ACCURACY.md.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from bench.common import ACCURACY, put_section
from bench.datasets import add_devsets
from facedb.config import Settings
from facedb.evaluation import metrics
from facedb.pipeline import chips
from facedb.pipeline.analyzer import FaceAnalyzer
from facedb.pipeline.decode import decode_image
from facedb.pipeline.types import Detection

SECTION = "## Exploration: how FaceNet is fed (lfw-dev)"

SERVED = "box+10% margin, rotated, square, RGB"
Chip = Callable[[NDArray[np.uint8], Detection], NDArray[np.float32]]


@dataclass
class Photo:
    person: str | None  # None: a distractor
    path: Path
    bgr: NDArray[np.uint8]
    detection: Detection | None


def load(root: Path, analyzer: FaceAnalyzer) -> list[Photo]:
    photos: list[Photo] = []
    paths: list[tuple[str | None, Path]]
    paths = [(p.name, f) for p in sorted((root / "people").iterdir()) for f in sorted(p.iterdir())]
    paths += [(None, f) for f in sorted((root / "distractors").iterdir())]
    for person, path in paths:
        bgr = decode_image(path.read_bytes(), 1 << 40, 1 << 40).bgr.copy()
        found = analyzer.detector.detect(bgr)
        found = [d for d in found if d.confidence >= 0.8 and min(d.box.w, d.box.h) >= 20]
        best = max(found, key=lambda d: d.box.w * d.box.h) if found else None
        photos.append(Photo(person, path, bgr, best))
    return photos


def deepface_bgr(bgr: NDArray[np.uint8], d: Detection) -> NDArray[np.float32]:
    """The pipeline before issue 11: deepface's rotated tight crop, padded, fed as BGR."""
    return chips.legacy_input(chips.aligned_chip(bgr, d))[0]


def deepface_rgb(bgr: NDArray[np.uint8], d: Detection) -> NDArray[np.float32]:
    return chips.legacy_input(np.ascontiguousarray(chips.aligned_chip(bgr, d)[:, :, ::-1]))[0]


def margin(m: float, rotate: bool, square: bool) -> Chip:
    def chip(bgr: NDArray[np.uint8], d: Detection) -> NDArray[np.float32]:
        cut = chips.margin_crop(bgr, d, m, rotate=rotate, square=square)
        return chips.prewhiten(cut[:, :, ::-1])

    return chip


VARIANTS: dict[str, Chip] = {
    "deepface tight rotated, padded, BGR (before)": deepface_bgr,
    "deepface tight rotated, padded, RGB": deepface_rgb,
    **{
        f"box+{m:.0%} margin, stretched, RGB": margin(m, rotate=False, square=False)
        for m in (0.0, 0.1, 0.2, 0.3, 0.4)
    },
    **{
        f"box+{m:.0%} margin, square, RGB": margin(m, rotate=False, square=True)
        for m in (0.1, 0.2, 0.3)
    },
    **{
        f"box+{m:.0%} margin, rotated, square, RGB": margin(m, rotate=True, square=True)
        for m in (0.1, 0.2)
    },
}


def evaluate(
    photos: list[Photo], vectors: NDArray[np.float32], per_person: int = 1, how: str = "max"
) -> dict[str, float]:
    """Rank-1 and FNIR at FPIR 1/2/5% under the lfw-dev protocol (vectors: one per photo).

    ``per_person`` gallery photos per person; a person's score is the ``how`` of their
    faces' scores ("max", "mean") or the score of their averaged embedding ("template").
    """
    members: dict[str, list[int]] = {}
    slots: dict[str, int] = {}  # gallery photos taken per person, usable or not
    probes = []
    for i, photo in enumerate(photos):
        key = photo.person or f"distractor:{photo.path.name}"
        if slots.get(key, 0) < per_person:
            slots[key] = slots.get(key, 0) + 1
            if photo.detection is not None:
                members.setdefault(key, []).append(i)
        else:
            probes.append(i)
    ids = [k for k, rows in members.items() if rows]
    found = np.array([p.detection is not None for p in photos])
    if how == "template":
        t = np.stack([vectors[members[k]].sum(axis=0) for k in ids])
        t /= np.linalg.norm(t, axis=1, keepdims=True)

    def person_scores(q: NDArray[np.float32]) -> NDArray[np.float64]:
        if how == "template":
            return np.asarray(t @ q, np.float64)
        reduce = np.max if how == "max" else np.mean
        return np.array([reduce(vectors[members[k]] @ q) for k in ids], np.float64)

    ranks, mate_scores, nonmate_top = [], [], []
    for i in probes:
        person = photos[i].person
        if not found[i] or person not in ids:
            ranks.append(0)
            mate_scores.append(-1.0)
            nonmate_top.append(-1.0)
            continue
        scores = person_scores(vectors[i])
        mate = ids.index(person)
        order = np.argsort(-scores)
        ranks.append(int(np.where(order == mate)[0][0]) + 1)
        mate_scores.append(float(scores[mate]))
        nonmate_top.append(float(np.max(np.delete(scores, mate))))
    r = np.asarray(ranks)
    out = {"rank1": metrics.rank_rate(r, 1), "rank5": metrics.rank_rate(r, 5)}
    for fpir in (0.01, 0.02, 0.05):
        point = metrics.fnir_at_fpir(r == 1, np.asarray(mate_scores), np.asarray(nonmate_top), fpir)
        out[f"fnir{fpir:.0%}"] = point.rate
    out["probes"] = len(r)
    return out


def embed(analyzer: FaceAnalyzer, inputs: list[NDArray[np.float32]]) -> NDArray[np.float32]:
    return analyzer.embedder.embed([x[None] for x in inputs])


def main() -> None:
    parser = argparse.ArgumentParser()
    add_devsets(parser)
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--only", default="", help="run only variants whose name holds this")
    args = parser.parse_args()
    analyzer = FaceAnalyzer(Settings())
    analyzer.load()
    start = time.perf_counter()
    photos = load(args.devsets / "lfw-dev", analyzer)
    found = sum(p.detection is not None for p in photos)
    print(f"detected {found}/{len(photos)} photos in {time.perf_counter() - start:.0f} s")
    rows = []
    blank = np.zeros((160, 160, 3), np.float32)
    chosen: NDArray[np.float32] | None = None
    for name, chip in VARIANTS.items():
        if args.only not in name:
            continue
        inputs = [chip(p.bgr, p.detection) if p.detection else blank for p in photos]
        plain = embed(analyzer, inputs)
        flipped = embed(analyzer, [np.ascontiguousarray(x[:, ::-1]) for x in inputs])
        both = plain + flipped
        both /= np.linalg.norm(both, axis=1, keepdims=True)
        for label, vectors in (("", plain), (" + mirror average", both)):
            result = evaluate(photos, vectors)
            rows.append((name + label, result))
            print(f"{name + label:60} {_line(result)}", flush=True)
        if name == SERVED:
            chosen = both
    templates = []
    if chosen is not None:
        for how in ("max", "mean", "template"):
            result = evaluate(photos, chosen, per_person=2, how=how)
            templates.append((how, result))
            print(f"2 gallery photos, person score = {how:9} {_line(result)}", flush=True)
    if args.write and not args.only:
        write(rows, found, len(photos))
    if args.write and templates:
        write_templates(templates)


def _line(r: dict[str, float]) -> str:
    return (
        f"rank-1 {r['rank1']:.3f} rank-5 {r['rank5']:.3f} FNIR@FPIR 1/2/5% "
        f"{r['fnir1%']:.3f} {r['fnir2%']:.3f} {r['fnir5%']:.3f}"
    )


HEADER = (
    "| {} | rank-1 | rank-5 | FNIR @ FPIR 1% | @ 2% | @ 5% |",
    "|---|---|---|---|---|---|",
)
TEMPLATES = "## Exploration: one face or a template per person (lfw-dev)"


def _row(name: str, r: dict[str, float]) -> str:
    return (
        f"| {name} | {r['rank1']:.3f} | {r['rank5']:.3f} | {r['fnir1%']:.3f} | "
        f"{r['fnir2%']:.3f} | {r['fnir5%']:.3f} |"
    )


def write(rows: list[tuple[str, dict[str, float]]], found: int, total: int) -> None:
    _write_table(
        SECTION,
        "`.venv/bin/python -m bench.accuracy_explore --write` (lfw-dev, 400 probes against "
        f"100 persons + 400 distractors; faces found in {found}/{total} photos). With 400 "
        "searches a rate's 95% interval is about ±0.015 at rank-1 and ±0.04 for FNIR at "
        "FPIR 1% (that threshold rests on the 5th-highest of 400 non-mated scores).",
        "chip fed to FaceNet",
        rows,
    )


def write_templates(templates: list[tuple[str, dict[str, float]]]) -> None:
    _write_table(
        TEMPLATES,
        "`.venv/bin/python -m bench.accuracy_explore --only "
        f"'{SERVED}' --write`: the served chip ({SERVED} + mirror average), two gallery "
        f"photos per person, {templates[0][1]['probes']} searches; a person's score is the "
        "best of their faces (max, what the service does), the mean of them, or the score "
        "of their averaged embedding (template).",
        "person score",
        templates,
    )


def _write_table(
    section: str, intro: str, label: str, rows: list[tuple[str, dict[str, float]]]
) -> None:
    lines = [section, "", intro, "", HEADER[0].format(label), HEADER[1]]
    lines += [*[_row(name, r) for name, r in rows], ""]
    put_section(ACCURACY, section, "\n".join(lines))


if __name__ == "__main__":
    main()

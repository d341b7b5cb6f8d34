"""What measuring a face's quality costs, against the search path's analysis of the same
photo (decode, detect, age and gender, chips, the served recipe's networks), alternated
photo by photo on the same machine.

    PYTHONPATH=. python -m bench.quality_cost --devsets ../shared/devsets [--photos 40] [--write]
"""

from __future__ import annotations

import statistics
import time

from bench.common import arguments, report
from bench.datasets import add_devsets, lfw_dev
from facedb.config import Settings
from facedb.pipeline import quality
from facedb.pipeline.analyzer import FaceAnalyzer
from facedb.pipeline.decode import decode_image


def main() -> None:
    parser = arguments(__doc__)
    add_devsets(parser)
    parser.add_argument("--photos", type=int, default=40)
    args = parser.parse_args()
    analyzer = FaceAnalyzer(Settings())
    analyzer.load()
    paths = lfw_dev(args.devsets).paths[:: max(1, 900 // args.photos)][: args.photos]
    analysis, measuring = [], []
    for path in [paths[0], *paths]:  # the first photo warms up, and is not counted
        data = path.read_bytes()
        start = time.perf_counter()
        faces = analyzer.analyze(data)
        took = time.perf_counter() - start
        if not faces:
            continue
        bgr = decode_image(data, 1 << 40, 1 << 40).bgr
        start = time.perf_counter()
        for face in faces:
            quality.assess(bgr, face.detection, face.age)
        measuring.append((time.perf_counter() - start) / len(faces))
        analysis.append(took / len(faces))
    analysis, measuring = analysis[1:], measuring[1:]
    a, m = statistics.median(analysis) * 1000, statistics.median(measuring) * 1000
    text = "\n".join(
        [
            "## Face image quality: cost (`python -m bench.quality_cost`)",
            "",
            f"{len(analysis)} lfw-dev photos, median per face: the search path's analysis "
            f"{a:.1f} ms, quality {m:.2f} ms (ratio {m / a:.3f}; p90 "
            f"{statistics.quantiles(measuring, n=10)[-1] * 1000:.2f} ms). Measured inside the "
            "analysis as served, so the analysis figure includes it.",
        ]
    )
    report(text, "Face image quality: cost", args.write)


if __name__ == "__main__":
    main()

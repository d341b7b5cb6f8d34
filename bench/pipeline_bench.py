"""Detect + align + embed (+ age/gender): time per photo by stage, ONNX Runtime against the
TensorFlow path it replaced and against DeepFace.represent, all in the same run.

Run: .venv/bin/python -m bench.pipeline_bench [--write]

1. Stages: each celebrity val photo analysed alone, stage by stage (decode, detect,
   age/gender, align = the recipe's chip and mirror plus the display thumbnail, embed),
   median ms per photo, on both paths.
2. Throughput: the same photos 1 and 16 per call (`analyze_many`), on both paths.
3. Photo size: one photo resized to 0.3, 2.6 and 12 MP, median of 3; DeepFace.represent
   (mtcnn + Facenet, without age/gender) on the same photo as the outside baseline.
With --write the tables replace the pipeline section of bench/RESULTS.md.
"""

from __future__ import annotations

import io
import platform
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from bench.common import Stopwatch, arguments, report, table
from bench.tensorflow_path import tensorflow_analyzer
from facedb.config import Settings
from facedb.models.sample_data import celebrity_dataset, photos
from facedb.pipeline.analyzer import FaceAnalyzer
from facedb.pipeline.base import THUMBNAIL_SIDE
from facedb.pipeline.chips import display_crop
from facedb.pipeline.decode import decode_image

SECTION = "## Pipeline: detect + embed"
STAGES = ("decode", "detect", "age/gender", "align", "embed")


def at_megapixels(path: Path, megapixels: float) -> bytes:
    image = Image.open(path).convert("RGB")
    scale = (megapixels * 1e6 / (image.width * image.height)) ** 0.5
    resized = image.resize((round(image.width * scale), round(image.height * scale)))
    buffer = io.BytesIO()
    resized.save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def stage_ms(analyzer: FaceAnalyzer, payloads: list[bytes]) -> dict[str, float]:
    """Return the median ms per photo of each stage, the photo analysed alone."""
    clock = Stopwatch()
    s = analyzer.settings
    for data in payloads:
        with clock("decode"):
            bgr = decode_image(data, s.max_image_bytes, s.max_image_pixels).bgr
        with clock("detect"):
            found = analyzer.detector.detect(bgr)
        with clock("age/gender"):
            analyzer.attributes.estimate(bgr, found)
        with clock("align"):
            views = [analyzer.recipe.views(bgr, d, analyzer.networks) for d in found]
            for d in found:
                display_crop(bgr, d, THUMBNAIL_SIDE)
        with clock("embed"):
            analyzer.embed_views(analyzer.recipe, views)
    return clock.medians()


def by_batch(analyzer: FaceAnalyzer, payloads: list[bytes], batch: int) -> float:
    """Return seconds per photo analysing the photos ``batch`` at a time."""
    start = time.perf_counter()
    for i in range(0, len(payloads), batch):
        analyzer.analyze_many(payloads[i : i + batch])
    return (time.perf_counter() - start) / len(payloads)


def median_seconds(call: Callable[[], Any], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def deepface_seconds(data: bytes) -> float:
    from deepface import DeepFace

    bgr = np.ascontiguousarray(np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))[:, :, ::-1])
    return median_seconds(lambda: DeepFace.represent(
        bgr, model_name="Facenet", detector_backend="mtcnn", normalization="Facenet",
        enforce_detection=False,
    ), repeat=1)  # fmt: skip


def main() -> None:
    parser = arguments(__doc__)
    args = parser.parse_args()
    settings = Settings()
    paths = {"ONNX Runtime": FaceAnalyzer(settings), "TensorFlow": tensorflow_analyzer(settings)}
    val = [
        p for files in photos(celebrity_dataset(settings.cache_dir) / "val").values() for p in files
    ]
    payloads = [p.read_bytes() for p in val[:16]]
    for analyzer in paths.values():
        analyzer.load()
        analyzer.analyze_many(payloads[:2])  # warm-up

    stages = {name: stage_ms(a, payloads) for name, a in paths.items()}
    stage_rows = [
        [stage, *(f"{stages[name][stage]:.1f}" for name in paths),
         f"{stages['TensorFlow'][stage] / stages['ONNX Runtime'][stage]:.1f}x"]
        for stage in STAGES
    ]  # fmt: skip
    totals = {name: sum(stages[name].values()) for name in paths}
    stage_rows.append(["total", *(f"{totals[n]:.1f}" for n in paths),
                       f"{totals['TensorFlow'] / totals['ONNX Runtime']:.1f}x"])  # fmt: skip

    batch_rows = []
    for batch in (1, 16):
        per_photo = {name: by_batch(a, payloads, batch) for name, a in paths.items()}
        batch_rows.append([f"{len(payloads)} val photos, batch {batch}",
                           *(f"{per_photo[n]:.3f}" for n in paths),
                           f"{per_photo['TensorFlow'] / per_photo['ONNX Runtime']:.1f}x"])  # fmt: skip

    size_rows = []
    for megapixels in (0.3, 2.6, 12.0):
        data = at_megapixels(val[5], megapixels)
        ours = {name: median_seconds(partial(a.analyze, data)) for name, a in paths.items()}
        theirs = deepface_seconds(data)
        size_rows.append([f"{megapixels} MP", *(f"{ours[n]:.2f}" for n in paths),
                          f"{theirs:.2f}", f"{theirs / ours['ONNX Runtime']:.0f}x"])  # fmt: skip

    names = list(paths)
    lines = [
        SECTION, "",
        f"Machine: {platform.processor() or platform.machine()}, 2 cores, CPU only. Command: "
        "`.venv/bin/python -m bench.pipeline_bench --write`. Both paths run the current recipe "
        "(RGB chip and its mirror, averaged) and the same age/gender network (ONNX on both); "
        "the TensorFlow path is MTCNN and FaceNet as served before the port "
        "(`bench/tensorflow_path.py`).", "",
        "Stages of one photo analysed alone, median ms over the val photos:", "",
        *table(["stage", *(f"{n} ms" for n in names), "TensorFlow / ONNX"], stage_rows), "",
        "Whole pipeline, seconds per photo:", "",
        *table(["workload", *(f"{n} s/photo" for n in names), "TensorFlow / ONNX"],
               batch_rows), "",
        "By photo size (the detector sees at most 1024 px; DeepFace.represent runs MTCNN on "
        "the full photo and has no age/gender), seconds per photo:", "",
        *table(["photo size", *(f"{n} s" for n in names), "DeepFace.represent s",
                "DeepFace / ONNX"], size_rows),
    ]  # fmt: skip
    report("\n".join(lines) + "\n", SECTION, args.write)


if __name__ == "__main__":
    main()

"""Detect + align + embed (+ age/gender) time per photo and per face.

Run: .venv/bin/python -m bench.pipeline_bench [--write]
Baseline in the same process: DeepFace.represent(model_name="Facenet", detector_backend="mtcnn")
on the same photos, reported as a ratio. With --write the table replaces the pipeline section
of bench/RESULTS.md.
"""

from __future__ import annotations

import io
import platform
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

from bench.common import arguments, report, table
from facedb.config import Settings
from facedb.pipeline.analyzer import FaceAnalyzer
from facedb.sample_data import celebrity_dataset, photos

SECTION = "## Pipeline: detect + embed"


def at_megapixels(path: Path, megapixels: float) -> bytes:
    image = Image.open(path).convert("RGB")
    scale = (megapixels * 1e6 / (image.width * image.height)) ** 0.5
    resized = image.resize((round(image.width * scale), round(image.height * scale)))
    buffer = io.BytesIO()
    resized.save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def deepface_seconds(data: bytes, model_dir: Path) -> float:
    from deepface import DeepFace

    rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    start = time.perf_counter()
    DeepFace.represent(
        bgr, model_name="Facenet", detector_backend="mtcnn", normalization="Facenet",
        enforce_detection=False,
    )  # fmt: skip
    return time.perf_counter() - start


def by_batch(analyzer: FaceAnalyzer, payloads: list[bytes]) -> list[tuple[str, int, int, float]]:
    """Return (workload, photos, faces, seconds) analysing the photos 1 and 16 at a time."""
    rows = []
    for batch in (1, 16):
        start = time.perf_counter()
        faces = 0
        for i in range(0, len(payloads), batch):
            for result in analyzer.analyze_many(payloads[i : i + batch]):
                faces += len(result) if isinstance(result, list) else 0
        rows.append((f"celebrity val, batch {batch}", len(payloads), faces,
                     time.perf_counter() - start))  # fmt: skip
    return rows


def by_size(analyzer: FaceAnalyzer, source: Path, model_dir: Path) -> list[tuple[float, ...]]:
    """Return (megapixels, our median seconds, DeepFace.represent seconds) per photo size."""
    sizes = []
    for megapixels in (0.3, 2.6, 12.0):
        data = at_megapixels(source, megapixels)
        times = []
        for _ in range(3):
            start = time.perf_counter()
            analyzer.analyze(data)
            times.append(time.perf_counter() - start)
        sizes.append((megapixels, statistics.median(times), deepface_seconds(data, model_dir)))
    return sizes


def main() -> None:
    parser = arguments(__doc__)
    args = parser.parse_args()
    settings = Settings()
    analyzer = FaceAnalyzer(settings)
    analyzer.load()
    val = [
        p for files in photos(celebrity_dataset(settings.cache_dir) / "val").values() for p in files
    ]
    payloads = [p.read_bytes() for p in val[:16]]
    analyzer.analyze_many(payloads[:2])  # warm-up
    rows = by_batch(analyzer, payloads)
    sizes = by_size(analyzer, val[5], settings.models_path)
    per_batch = [
        [name, str(n), str(faces), f"{elapsed / n:.3f}", f"{elapsed / max(faces, 1):.3f}"]
        for name, n, faces, elapsed in rows
    ]
    per_size = [
        [f"{mp} MP", f"{ours:.2f}", f"{theirs:.2f}", f"{theirs / ours:.1f}x"]
        for mp, ours, theirs in sizes
    ]
    lines = [
        SECTION,
        "",
        f"Machine: {platform.processor() or platform.machine()}, CPU only. "
        "Command: `.venv/bin/python -m bench.pipeline_bench --write`.",
        "Our time includes age/gender; DeepFace.represent's does not.",
        "",
        *table(["workload", "photos", "faces", "s/photo", "s/face"], per_batch),
        "",
        *table(
            [
                "photo size",
                "FaceDB s/photo (median of 3)",
                "DeepFace.represent s",
                "DeepFace / FaceDB",
            ],
            per_size,
        ),
    ]
    text = "\n".join(lines) + "\n"
    report(text, SECTION, args.write)


if __name__ == "__main__":
    main()

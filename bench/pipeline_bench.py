"""Detect + align + embed (+ age/gender) time per photo and per face.

Run: .venv/bin/python -m bench.pipeline_bench [--write]
Baseline in the same process: DeepFace.represent(model_name="Facenet", detector_backend="mtcnn")
on the same photos, reported as a ratio. With --write the table replaces the pipeline section
of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import io
import platform
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

from facedb.config import Settings
from facedb.pipeline.analyzer import FaceAnalyzer
from facedb.sample_data import celebrity_dataset, photos

RESULTS = Path(__file__).with_name("RESULTS.md")
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    settings = Settings()
    analyzer = FaceAnalyzer(settings)
    analyzer.load()
    val = [
        p for files in photos(celebrity_dataset(settings.cache_dir) / "val").values() for p in files
    ]
    payloads = [p.read_bytes() for p in val[:16]]
    analyzer.analyze_many(payloads[:2])  # warm-up

    rows = []
    for batch in (1, 16):
        start = time.perf_counter()
        faces = 0
        for i in range(0, len(payloads), batch):
            for result in analyzer.analyze_many(payloads[i : i + batch]):
                faces += len(result) if isinstance(result, list) else 0
        elapsed = time.perf_counter() - start
        rows.append((f"celebrity val, batch {batch}", len(payloads), faces, elapsed))

    sizes = []
    source = val[5]
    for megapixels in (0.3, 2.6, 12.0):
        data = at_megapixels(source, megapixels)
        times = []
        for _ in range(3):
            start = time.perf_counter()
            analyzer.analyze(data)
            times.append(time.perf_counter() - start)
        ours = statistics.median(times)
        theirs = deepface_seconds(data, settings.models_path)
        sizes.append((megapixels, ours, theirs))

    lines = [
        SECTION,
        "",
        f"Machine: {platform.processor() or platform.machine()}, CPU only. "
        "Command: `.venv/bin/python -m bench.pipeline_bench --write`.",
        "Our time includes age/gender; DeepFace.represent's does not.",
        "",
        "| workload | photos | faces | s/photo | s/face |",
        "|---|---|---|---|---|",
    ]
    for name, n, faces, elapsed in rows:
        lines.append(
            f"| {name} | {n} | {faces} | {elapsed / n:.3f} | {elapsed / max(faces, 1):.3f} |"
        )
    lines += [
        "",
        "| photo size | FaceDB s/photo (median of 3) | DeepFace.represent s | DeepFace / FaceDB |",
        "|---|---|---|---|",
    ]
    for megapixels, ours, theirs in sizes:
        lines.append(f"| {megapixels} MP | {ours:.2f} | {theirs:.2f} | {theirs / ours:.1f}x |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        write_section(text)


def write_section(text: str, section: str = SECTION) -> None:
    """Replace one benchmark's section of RESULTS.md, keeping the others."""
    existing = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    sections = existing.split("\n## ")
    kept = [sections[0].rstrip("\n")] + [
        "## " + s.rstrip("\n") for s in sections[1:] if not ("## " + s).startswith(section)
    ]
    RESULTS.write_text("\n\n".join([*kept, text.rstrip("\n")]) + "\n")


if __name__ == "__main__":
    main()

"""Batch cross-match of two registers against the per-face search loop, in the same run.

Run: .venv/bin/python -m bench.crossmatch_bench [--sizes 10000x100000,100000x100000] [--write]

Synthetic registers (128-d unit vectors; a tenth of the missing faces are noisy copies of
found faces, so pairs exist) are bulk-inserted into SQLite, four faces per person. The batch
job (`facedb crossmatch`: 1024 query faces per index call, pairs upserted per batch) matches
every face of both registers against the other. The baseline is the same matching called
once per face, timed on a sample of faces and scaled to all of them. Peak RSS of the process
is read after each size.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.pipeline_bench import write_section
from bench.service_bench import insert_synthetic
from facedb.config import Settings
from facedb.domain import JobKind
from facedb.service import crossmatch, review
from facedb.service.context import FaceDB
from facedb.service.jobs import Job
from facedb.store import candidates as store
from facedb.store.db import transaction, upgrade

SECTION = "## Cross-match: batch job against the per-face loop"
LOOP_SAMPLE = 300


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def registers(missing: int, found: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    found_v = unit(rng.standard_normal((found, 128)))
    missing_v = unit(rng.standard_normal((missing, 128)))
    mates = missing // 10
    missing_v[:mates] = unit(found_v[:mates] + 0.09 * rng.standard_normal((mates, 128)))
    return missing_v, found_v


def run(missing: int, found: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'x.sqlite3'}"
        upgrade(url)
        db = FaceDB(Settings(data_dir=Path(tmp), database_url=url))
        db.start(load_models=False)
        missing_v, found_v = registers(missing, found)
        insert_synthetic(db, missing_v, "missing", rebuild=False)
        insert_synthetic(db, found_v, "found")

        with transaction(db.sessions) as session:
            faces, vectors = store.faces_to_crossmatch(
                session, db.index.generation, 128, LOOP_SAMPLE
            )
        start = time.perf_counter()
        for i in range(len(faces)):
            crossmatch.match(db, faces[i : i + 1], vectors[i : i + 1])
        loop_per_face = (time.perf_counter() - start) / len(faces)

        job = Job(kind=JobKind.CROSSMATCH, params={})
        start = time.perf_counter()
        crossmatch.run_batch(db, job)
        batch_s = time.perf_counter() - start
        _, pairs = review.list_matches(db, limit=1)
        db.close()
    total = missing + found
    return {
        "faces": total,
        "batch_s": batch_s,
        "batch_per_face_ms": 1000 * batch_s / total,
        "loop_per_face_ms": 1000 * loop_per_face,
        "loop_s": loop_per_face * total,
        "pairs": pairs,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000x100000,100000x100000")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    lines = [
        SECTION,
        "",
        "Command: `.venv/bin/python -m bench.crossmatch_bench --write` (2-core CPU, SQLite, "
        "exact index). Every face of both registers is matched against the other.",
        "",
        "| missing x found | faces matched | batch s | batch ms/face | loop ms/face (sample of "
        f"{LOOP_SAMPLE}) | loop s (scaled) | loop / batch | pairs | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for size in args.sizes.split(","):
        missing, found = (int(x) for x in size.split("x"))
        r = run(missing, found)
        lines.append(
            f"| {missing:,} x {found:,} | {r['faces']:,} | {r['batch_s']:.1f} | "
            f"{r['batch_per_face_ms']:.2f} | {r['loop_per_face_ms']:.2f} | {r['loop_s']:.0f} | "
            f"{r['loop_s'] / r['batch_s']:.1f}x | {r['pairs']:,} | {r['peak_rss_mb']:.0f} |"
        )
        print(lines[-1], flush=True)
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section(text, SECTION)


if __name__ == "__main__":
    main()

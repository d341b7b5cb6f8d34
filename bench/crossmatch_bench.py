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

import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import arguments, insert_synthetic, report, sqlite_services, unit
from facedb.domain import JobKind
from facedb.services.jobs import Job

SECTION = "## Cross-match: batch job against the per-face loop"
LOOP_SAMPLE = 300


def registers(missing: int, found: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    found_v = unit(rng.standard_normal((found, 128)))
    missing_v = unit(rng.standard_normal((missing, 128)))
    mates = missing // 10
    missing_v[:mates] = unit(found_v[:mates] + 0.09 * rng.standard_normal((mates, 128)))
    return missing_v, found_v


def run(missing: int, found: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        services = sqlite_services(Path(tmp))
        missing_v, found_v = registers(missing, found)
        insert_synthetic(services, missing_v, "missing", rebuild=False)
        insert_synthetic(services, found_v, "found")
        with services.store.unit() as unit_of_work:
            faces, vectors = unit_of_work.registers.waiting(
                services.index.generation, 128, LOOP_SAMPLE
            )
        start = time.perf_counter()
        for i in range(len(faces)):
            services.crossmatch.match(faces[i : i + 1], vectors[i : i + 1])
        loop_per_face = (time.perf_counter() - start) / len(faces)

        start = time.perf_counter()
        services.crossmatch.run_batch(Job(kind=JobKind.CROSSMATCH, params={}))
        batch_s = time.perf_counter() - start
        _, pairs = services.review.page(limit=1)
        services.close()
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
    parser = arguments(__doc__)
    parser.add_argument("--sizes", default="10000x100000,100000x100000")
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
    report(text, SECTION, args.write)


if __name__ == "__main__":
    main()

"""Index search latency, memory and IVF recall; DeepFace.search on the same data as baseline.

Run: .venv/bin/python -m bench.index_bench [--sizes 10000 100000 1000000] [--deepface-max 100000] [--write]

Synthetic face-like 128-d unit vectors (many people, a few photos each). For each size:
FaceDB's FaissIndex exact and IVF (p50/p99 of single-query search, resident memory added,
IVF recall@10 against exact); and, up to --deepface-max, DeepFace.search on its SQLite
backend holding the same vectors, exact and ann, timed as search minus DeepFace.represent
of the same photo (its detect+embed), so both sides measure only the search part.
"""

from __future__ import annotations

import gc
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import D, arguments, face_like, report, rss_mib
from bench.serving import deepface_db
from facedb.domain import IndexKind
from facedb.index.faiss_index import FaissIndex

SECTION = "## Index: search latency and memory"


def index_mib(index: FaissIndex) -> float:
    """Return the size of the index's serialized form (its vectors and structures)."""
    import faiss

    return float(len(faiss.serialize_index(index._master))) / 2**20


def latencies(
    index: FaissIndex, queries: np.ndarray, k: int = 10
) -> tuple[float, float, np.ndarray]:
    times, found = [], []
    for q in queries:
        start = time.perf_counter()
        _, ids = index.search(q[None, :], k)
        times.append(time.perf_counter() - start)
        found.append(ids[0])
    ms = np.array(times) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99)), np.array(found)


def deepface_search_seconds(path: Path, photo: str, method: str, repeats: int = 5) -> float:
    """Median over pairs of (search time - represent time) on the same photo."""
    from deepface import DeepFace

    common = {"model_name": "Facenet", "detector_backend": "mtcnn", "normalization": "Facenet"}
    differences = []
    for _ in range(repeats):
        start = time.perf_counter()
        DeepFace.represent(photo, **common)
        represent = time.perf_counter() - start
        start = time.perf_counter()
        DeepFace.search(photo, database_type="sqlite", connection_details=str(path),
                        search_method=method, k=10, **common)  # fmt: skip
        differences.append(time.perf_counter() - start - represent)
    return statistics.median(differences)


def faiss_row(n: int) -> dict[str, float]:
    """Return exact and IVF latency, memory and IVF recall at ``n`` faces."""
    vectors = face_like(n, seed=n)
    ids = np.arange(1, n + 1, dtype=np.int64)
    queries = vectors[np.random.default_rng(1).integers(0, n, 200)] + 0.03 * face_like(200, 2)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    gc.collect()
    base = rss_mib()
    exact = FaissIndex.build(D, ids, vectors, device="cpu")
    exact_mib = max(rss_mib() - base, index_mib(exact))
    e50, e99, truth = latencies(exact, queries)
    del exact
    gc.collect()
    base = rss_mib()
    nlist = int(4 * np.sqrt(n))
    ivf = FaissIndex.build(D, ids, vectors, kind=IndexKind.IVF, nlist=nlist, nprobe=32,
                           device="cpu")  # fmt: skip
    ivf_mib = max(rss_mib() - base, index_mib(ivf))
    i50, i99, approx = latencies(ivf, queries)
    recall = float(np.mean([len(set(a) & set(t)) / 10 for a, t in zip(approx, truth, strict=True)]))
    return {"n": n, "exact_p50_ms": e50, "exact_p99_ms": e99, "exact_mib": exact_mib,
            "ivf_nlist": nlist, "ivf_p50_ms": i50, "ivf_p99_ms": i99, "ivf_mib": ivf_mib,
            "ivf_recall10": recall, "ivf_top1": float(np.mean(approx[:, 0] == truth[:, 0]))}  # fmt: skip


def deepface_cells(n: int, photo: str) -> dict[str, float | str]:
    """Return DeepFace.search's exact and ann search time (ms) on the same vectors."""
    from deepface import DeepFace

    cells: dict[str, float | str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "deepface.sqlite3"
        deepface_db(path, face_like(n, seed=n))
        cells["deepface_exact_ms"] = deepface_search_seconds(path, photo, "exact") * 1000
        try:
            DeepFace.build_index(model_name="Facenet", detector_backend="mtcnn",
                                 database_type="sqlite", connection_details=str(path))  # fmt: skip
            cells["deepface_ann_ms"] = deepface_search_seconds(path, photo, "ann") * 1000
        except Exception as exc:  # report, don't hide, a baseline that cannot run
            cells["deepface_ann_error"] = f"{type(exc).__name__}: {exc}"[:200]
    return cells


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--deepface-max", type=int, default=100_000)
    args = parser.parse_args()

    from facedb.config import Settings
    from facedb.models.sample_data import celebrity_dataset, photos
    from facedb.pipeline.deepface_env import configure_deepface

    settings = Settings()
    configure_deepface(settings.models_path)
    photo = str(photos(celebrity_dataset(settings.cache_dir) / "val")["madonna"][0])
    rows: list[dict[str, Any]] = []
    for n in args.sizes:
        row: dict[str, Any] = faiss_row(n)
        if n <= args.deepface_max:
            row |= deepface_cells(n, photo)
        print(json.dumps(row), flush=True)
        rows.append(row)
    text = render(rows)
    report(text, SECTION, args.write)


def ann_cell(ms: float | None, error: object) -> str:
    if ms is None:
        return str(error or "—")
    return f"{ms:.0f}" if ms >= 1 else "<1 (below the noise of represent)"


def render(rows: list[dict[str, Any]]) -> str:
    lines = [
        SECTION,
        "",
        "Command: `.venv/bin/python -m bench.index_bench --write` (2-core CPU, no GPU).",
        "Single-query top-10 search, 200 queries; memory is resident memory added by building",
        "the index (at least its serialized size). IVF top-1: share of queries whose best hit",
        "equals exact search's. DeepFace columns: DeepFace.search on its SQLite backend holding the same",
        "vectors, minus DeepFace.represent of the same photo (median of 5 pairs), i.e. its search part.",
        "",
        "| faces | exact p50 / p99 ms | exact MiB | IVF (nlist) p50 / p99 ms | IVF MiB | IVF recall@10 / top-1 "
        "| DeepFace exact ms | DeepFace ann ms | DeepFace exact / FaceDB exact p50 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        df_exact = r.get("deepface_exact_ms")
        df_ann = r.get("deepface_ann_ms")
        ratio = f"{df_exact / r['exact_p50_ms']:.0f}x" if df_exact else "—"
        lines.append(
            f"| {r['n']:,} | {r['exact_p50_ms']:.2f} / {r['exact_p99_ms']:.2f} | {r['exact_mib']:.0f} "
            f"| ({r['ivf_nlist']}) {r['ivf_p50_ms']:.2f} / {r['ivf_p99_ms']:.2f} | {r['ivf_mib']:.0f} "
            f"| {r['ivf_recall10']:.3f} / {r['ivf_top1']:.3f} | {f'{df_exact:.0f}' if df_exact else '—'} "
            f"| {ann_cell(df_ann, r.get('deepface_ann_error'))} | {ratio} |"
        )
    lines += [
        "",
        "Reading the index table: the synthetic set is people with about four photos each, so a",
        "query's top 10 holds its own person's few photos and then far-away strangers whose order",
        "is close to random; IVF finds the person every time (top-1 agreement 1.000) while the",
        "strangers beyond them differ (recall@10). Use IVF for collections well past 10^5 faces;",
        "exact search is the default.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

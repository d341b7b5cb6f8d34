"""Milvus Lite and a Milvus server beside FAISS: loading, single and batched search
latency, memory, exactness.

Run: .venv/bin/python -m bench.milvus_bench [--sizes 100000 1000000] [--write]

Per size, in one run on the same synthetic face-like vectors: faiss ``IndexFlatIP`` (the
baseline), FaceDB's default FAISS index (fp16) and FaceDB's Milvus collection
(``MilvusIndex``: FLAT, inner product, float32) in Milvus Lite and on a real Milvus
standalone server (PyPI's ``milvus`` 2.3.5, started here on a free port). Loading is the time to insert every
vector and seal (flush) the collection so that searches use its index; single-query latency
is p50/p99 over 100 queries at k=10; batched is the time per query of a batch of 20.
Memory is the growth of this process's resident memory while the index is built (Milvus
Lite runs inside the process); for the server, that of the server process plus this one. Exactness: the share of top-10 lists equal to the baseline's.
Throughput: searches per second with 1, 8 and 32 threads searching the Milvus collection
at once, each calling it directly against all of them queued on FaceDB's search lane (the
waiting searches go to Milvus as one request).
"""

from __future__ import annotations

import gc
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from bench.common import (
    D,
    arguments,
    face_like,
    p50_p99,
    report,
    rss_mib,
    throughput,
)
from facedb.domain import IndexKind
from facedb.index.faiss_index import FaissIndex
from facedb.index.lane import SearchLane
from facedb.index.milvus_index import MilvusIndex, connect, disconnect

SECTION = "## Milvus (Lite and server) beside FAISS"
QUERIES = 100


def latency(search: Any, queries: np.ndarray) -> tuple[float, float, float]:
    """Return p50 and p99 ms of single queries, and ms per query in batches of 20."""
    p50, p99 = p50_p99(search, queries)
    start = time.perf_counter()
    for b in range(0, len(queries), 20):
        search(queries[b : b + 20], 10)
    return p50, p99, (time.perf_counter() - start) * 1000 / len(queries)


Row = tuple[Any, ...]  # (faces, index, load s, p50, p99, batched ms/query, MiB, same top-10)


def faiss_rows(n: int, vectors: np.ndarray, queries: np.ndarray) -> tuple[list[Row], np.ndarray]:
    """Return the baseline's and FaceDB fp16's rows, and the baseline's top 10 per query."""
    before, start = rss_mib(), time.perf_counter()
    baseline = faiss.IndexFlatIP(D)
    baseline.add(vectors)
    load_s, grown = time.perf_counter() - start, rss_mib() - before
    _, truth = baseline.search(queries, 10)
    rows: list[Row] = [(n, "faiss IndexFlatIP (baseline)", load_s,
                        *latency(baseline.search, queries), grown, 1.0)]  # fmt: skip
    before, start = rss_mib(), time.perf_counter()
    fp16 = FaissIndex.build(D, np.arange(n, dtype=np.int64), vectors, kind=IndexKind.FP16,
                            device="cpu")  # fmt: skip
    load_s, grown = time.perf_counter() - start, rss_mib() - before
    rows.append((n, "FaceDB faiss `fp16` (default)", load_s, *latency(fp16.search, queries),
                 grown, same_top10(fp16.search(queries, 10)[1], truth)))  # fmt: skip
    return rows, truth


def milvus_rows(
    n: int, vectors: np.ndarray, queries: np.ndarray, truth: np.ndarray, server: bool
) -> tuple[Row, list[tuple[int, str, int, float, float]]]:
    """Return the Milvus collection's row (Lite, or on a server), and its throughput direct
    and on the lane."""
    folder = Path(tempfile.mkdtemp(prefix="milvus-bench-"))
    embedded = None
    if server:
        from tests.api.conftest import free_port
        from tests.milvus_server import EmbeddedMilvus

        embedded = EmbeddedMilvus(folder / "server", free_port(), free_port())
        embedded.start()
        uri = embedded.uri
    else:
        uri = str(folder / "milvus.db")
    name = "Milvus server" if server else "Milvus Lite"
    before, server_before, start = rss_mib(), _server_rss(embedded), time.perf_counter()
    client = connect(uri)
    try:
        collection = MilvusIndex.create(client, "faces", D)
        collection.insert(np.arange(n, dtype=np.int64), vectors)
        collection.seal()
        load_s = time.perf_counter() - start
        grown = rss_mib() - before + _server_rss(embedded) - server_before
        same = same_top10(collection.search(queries, 10)[1], truth)
        row = (n, f"FaceDB `milvus` ({name}, FLAT)", load_s,
               *latency(collection.search, queries), grown, same)  # fmt: skip
        lane = SearchLane(collection.search)
        lanes = [(n, name, threads, throughput(collection.search, queries, threads, seconds=6.0),
                  throughput(lane.search, queries, threads, seconds=6.0))
                 for threads in (1, 8, 32)]  # fmt: skip
    finally:
        disconnect(client, uri)
        if embedded is not None:
            embedded.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return row, lanes


def _server_rss(server: Any) -> float:
    """The Milvus server process's resident memory in MiB (0 without a server)."""
    if server is None or server._server is None:
        return 0.0
    pid = server._server.server_proc.pid
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def same_top10(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([set(a) == set(b) for a, b in zip(found, truth, strict=True)]))


def main() -> None:
    parser = arguments(__doc__, sizes=[100_000, 1_000_000])
    args = parser.parse_args()
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    rows: list[Row] = []
    lane_rows: list[tuple[int, str, int, float, float]] = []
    for n in args.sizes:
        vectors, queries = face_like(n, seed=n), face_like(QUERIES, seed=n + 1)
        faiss_part, truth = faiss_rows(n, vectors, queries)
        rows += faiss_part
        for server in (False, True):
            gc.collect()
            milvus_part, lanes = milvus_rows(n, vectors, queries, truth, server)
            rows.append(milvus_part)
            lane_rows += lanes
            print(milvus_part, *lanes, sep="\n", flush=True)
        gc.collect()
    text = render(args.sizes, rows, lane_rows)
    report(text, SECTION, args.write)


def render(
    sizes: list[int], rows: list[tuple[Any, ...]], lane: list[tuple[int, str, int, float, float]]
) -> str:
    base = {r[0]: r[3] for r in rows if "baseline" in r[1]}
    return "\n".join(
        [
            SECTION,
            "",
            f"`.venv/bin/python -m bench.milvus_bench --sizes {' '.join(map(str, sizes))} --write` "
            f"on {platform.machine()}, {os.cpu_count()} cores, faiss {faiss.__version__}, "
            "milvus-lite 3.2.2 (embedded in the process) and the Milvus 2.3.5 standalone server "
            "of PyPI's `milvus` (its own process, on this machine), pymilvus 3.0.2; synthetic "
            f"face-like unit vectors, k=10, {QUERIES} queries. Load: insert every vector and "
            "seal (flush) so searches use the index. Memory: growth of the resident memory "
            "while loading, of this process (and of the server process, for the server). Same "
            "top-10: share of queries whose top 10 equals the baseline's.",
            "",
            "| faces | index | load s | p50 ms | p99 ms | ms/query in batches of 20 | p50 vs IndexFlatIP | MiB | same top-10 |",
            "|---|---|---|---|---|---|---|---|---|",
            *[
                f"| {n:,} | {name} | {load:.1f} | {p50:.2f} | {p99:.2f} | {batch:.2f} | "
                f"{base[n] / p50:.2f}x | {mib:.0f} | {same:.2f} |"
                for n, name, load, p50, p99, batch, mib, same in rows
            ],
            "",
            "Searches per second against the Milvus collection with concurrent callers: "
            "each calling Milvus against all of them queued on the search lane, which sends the "
            "waiting searches as one request:",
            "",
            "| faces | Milvus | callers | direct /s | lane /s | lane vs direct |",
            "|---|---|---|---|---|---|",
            *[
                f"| {n:,} | {m} | {t} | {d:.1f} | {b:.1f} | {b / d:.2f}x |"
                for n, m, t, d, b in lane
            ],
            "",
            "Milvus Lite is a single-process Milvus: what a one-machine trial runs on. The "
            "server is what several FaceDB processes share; on this 2-core machine it shares "
            "the cores with the client. A cluster (`deploy/milvus/docker-compose.yml`) was "
            "not run here (no container images).",
        ]
    )


if __name__ == "__main__":
    main()

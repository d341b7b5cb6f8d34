"""Search at scale: fp16 exact search, the search lane under concurrency, and the recall
that approximate search costs on mates at ranks 1-20.

Run: .venv/bin/python -m bench.scale_bench [--sizes 100000 1000000] [--write]

1. Single-query latency (p50, p99 over 200 queries, k=10) and memory of FaceDB's index
   kinds against faiss's own ``IndexFlatIP`` holding the same vectors, in the same run.
2. Throughput with 1, 8 and 32 threads searching at once: through the search lane (one
   faiss call per batch of waiting searches) against each thread calling the index.
3. Recall: queries made so that their one mate sits at an exact rank from 1 to 20 (a
   gallery vector plus noise, kept when exact search puts it there), as across large age
   gaps; the share of those mates each approximate option still returns in its top 10/20.
"""

from __future__ import annotations

import os
import platform

import faiss
import numpy as np

from bench.common import arguments, face_like, p50_p99, report, throughput
from facedb.domain import IndexKind
from facedb.index.faiss_index import FaissIndex
from facedb.index.lane import SearchLane

SECTION = "## Scale: fp16 exact search, the search lane, approximate recall"
D = 128


def mate_queries(
    exact: FaissIndex, vectors: np.ndarray, count: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (queries, mate ids, exact ranks) with every mate at an exact rank 1-20."""
    rng = np.random.default_rng(seed)
    queries: list[np.ndarray] = []
    mates: list[int] = []
    ranks: list[int] = []
    while len(queries) < count:
        picks = rng.integers(0, len(vectors), 256)
        noise = rng.uniform(0.15, 0.6, (256, 1)).astype(np.float32)
        q = vectors[picks] + noise * rng.standard_normal((256, D)).astype(np.float32)
        q /= np.linalg.norm(q, axis=1, keepdims=True)
        _, ids = exact.search(q, 20)
        for row, pick in enumerate(picks):
            hit = np.where(ids[row] == pick)[0]
            if len(hit) and len(queries) < count:
                queries.append(q[row])
                mates.append(int(pick))
                ranks.append(int(hit[0]) + 1)
    return np.asarray(queries, np.float32), np.asarray(mates), np.asarray(ranks)


def recall(index: FaissIndex, queries: np.ndarray, mates: np.ndarray, ranks: np.ndarray) -> dict:
    _, ids = index.search(queries, 20)
    out = {}
    for k in (10, 20):
        wanted = ranks <= k
        found = np.array([mates[i] in ids[i, :k] for i in range(len(queries))])
        out[k] = float(found[wanted].mean())
    return out


def main() -> None:
    parser = arguments(__doc__, sizes=[100_000, 1_000_000])
    args = parser.parse_args()
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    latency_rows, lane_rows, recall_rows = [], [], []
    for n in args.sizes:
        vectors = face_like(n, seed=n)
        ids = np.arange(n, dtype=np.int64)
        queries = face_like(200, seed=n + 1)
        baseline = faiss.IndexFlatIP(D)
        baseline.add(vectors)
        base50, base99 = p50_p99(baseline.search, queries)
        latency_rows.append((n, "faiss IndexFlatIP (baseline)", base50, base99, n * D * 4))
        kinds = {}
        for kind in (IndexKind.FLAT, IndexKind.FP16):
            index = FaissIndex.build(D, ids, vectors, kind=kind, device="cpu")
            kinds[kind] = index
            p50, p99 = p50_p99(index.search, queries)
            size = len(faiss.serialize_index(index._master))
            latency_rows.append((n, f"FaceDB `{kind}`", p50, p99, size))
            print(f"{n} {kind}: p50 {p50:.2f} ms, p99 {p99:.2f} ms, {size / 2**20:.0f} MiB")
        del baseline
        fp16 = kinds[IndexKind.FP16]
        lane = SearchLane(fp16.search)
        for threads in (1, 8, 32):
            direct = throughput(fp16.search, queries, threads)
            batched = throughput(lane.search, queries, threads)
            lane_rows.append((n, threads, direct, batched))
            print(f"{n} {threads} threads: direct {direct:.0f}/s, lane {batched:.0f}/s")
        mq, mates, ranks = mate_queries(kinds[IndexKind.FLAT], vectors, 400, seed=n + 2)
        ivf = FaissIndex.build(D, ids, vectors, kind=IndexKind.IVF, nlist=1024, device="cpu")
        for nprobe in (8, 32, 128):
            ivf._nprobe = nprobe
            ivf._set_nprobe(ivf._master)
            got = recall(ivf, mq, mates, ranks)
            p50, _ = p50_p99(ivf.search, queries[:100])
            recall_rows.append((n, f"IVF nlist 1024, nprobe {nprobe}", got[10], got[20], p50))
            print(f"{n} ivf nprobe {nprobe}: recall@10 {got[10]:.3f} @20 {got[20]:.3f}")
        got = recall(fp16, mq, mates, ranks)
        recall_rows.append((n, "fp16 exact (default)", got[10], got[20], 0.0))
        kinds.clear()
    text = render(args.sizes, latency_rows, lane_rows, recall_rows)
    report(text, SECTION, args.write)


def render(sizes: list[int], latency: list, lane: list, recalls: list) -> str:
    base = {n: p50 for n, name, p50, _, _ in latency if "baseline" in name}
    lines = [
        SECTION,
        "",
        f"`.venv/bin/python -m bench.scale_bench --sizes {' '.join(map(str, sizes))} --write` "
        f"on {platform.machine()}, {os.cpu_count()} cores, faiss {faiss.__version__}; "
        "synthetic face-like unit vectors (many people, a few photos each), k=10.",
        "",
        "Single-query latency and memory (the index's serialized size, ids included):",
        "",
        "| faces | index | p50 ms | p99 ms | p50 vs IndexFlatIP | MiB |",
        "|---|---|---|---|---|---|",
        *[
            f"| {n:,} | {name} | {p50:.2f} | {p99:.2f} | {base[n] / p50:.2f}x faster | "
            f"{size / 2**20:.0f} |"
            for n, name, p50, p99, size in latency
        ],
        "",
        "Searches per second with concurrent callers (fp16 index): each caller calling faiss "
        "against all of them queued on the search lane, which runs the waiting searches as "
        "one batch:",
        "",
        "| faces | callers | direct /s | lane /s | lane vs direct |",
        "|---|---|---|---|---|",
        *[f"| {n:,} | {t} | {d:.0f} | {b:.0f} | {b / d:.2f}x |" for n, t, d, b in lane],
        "",
        "Recall of mates placed at exact ranks 1-20 (400 queries per size; a query is a "
        "stored vector plus noise, kept when exact search ranks it 1-20): the share still "
        "in the top 10 (of those at exact rank ≤ 10) and top 20.",
        "",
        "| faces | search | recall@10 | recall@20 | p50 ms |",
        "|---|---|---|---|---|",
        *[
            f"| {n:,} | {name} | {r10:.3f} | {r20:.3f} | {p50:.2f} |"
            if p50
            else f"| {n:,} | {name} | {r10:.3f} | {r20:.3f} | (above) |"
            for n, name, r10, r20, p50 in recalls
        ],
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()

"""What the benchmarks share: arguments, synthetic faces, timing, memory, and the sections
they write (bench/RESULTS.md, docs/ACCURACY.md); servers and services are ``serving.py``'s.

Every benchmark measures FaceDB against a baseline run in the same script, on the same
machine and data, and reports ratios; ``put_section`` replaces that benchmark's section
of bench/RESULTS.md and keeps the others.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).with_name("RESULTS.md")
ACCURACY = Path(__file__).resolve().parent.parent / "docs" / "ACCURACY.md"
D = 128
Search = Callable[[np.ndarray, int], Any]


# --- RESULTS.md ---------------------------------------------------------------------------
def put_section(doc: Path, section: str, text: str) -> None:
    """Replace the ``## `` section of ``doc`` that starts with ``section`` (appended when
    absent), keeping the others in their order."""
    existing = doc.read_text() if doc.exists() else f"# {doc.stem.title()}\n"
    parts = existing.split("\n## ")
    head, sections = parts[0].rstrip("\n"), ["## " + p.rstrip("\n") for p in parts[1:]]
    new = text.rstrip("\n")
    replaced = [new if s.startswith(section) else s for s in sections]
    if new not in replaced:
        replaced.append(new)
    doc.parent.mkdir(exist_ok=True)
    doc.write_text("\n\n".join([head, *replaced]) + "\n")


def arguments(description: str | None, sizes: list[int] | None = None) -> argparse.ArgumentParser:
    """Return a parser with --write (update RESULTS.md) and, given defaults, --sizes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    if sizes is not None:
        parser.add_argument("--sizes", type=int, nargs="+", default=sizes)
    return parser


def report(text: str, section: str, write: bool) -> None:
    """Print a benchmark's section and, with --write, put it into RESULTS.md."""
    print(text)
    if write:
        put_section(RESULTS, section, text)


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Return a Markdown table's lines."""
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *["| " + " | ".join(row) + " |" for row in rows],
    ]


# --- synthetic faces and timing -------------------------------------------------------------
def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def face_like(n: int, seed: int, dimension: int = D) -> np.ndarray:
    """Return n unit vectors shaped like faces: many people, about four photos each."""
    rng = np.random.default_rng(seed)
    people = max(1, n // 4)
    centers = unit(rng.standard_normal((people, dimension)))
    noise = 0.08 * rng.standard_normal((n, dimension))
    return unit(centers[rng.integers(0, people, n)] + noise)


def p50_p99(search: Search, queries: np.ndarray, k: int = 10) -> tuple[float, float]:
    """Return the median and 99th percentile ms of single-query searches."""
    times = []
    for q in queries:
        start = time.perf_counter()
        search(q[None, :], k)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.99 * (len(times) - 1))]


class Stopwatch:
    """Milliseconds spent per named stage: ``with clock("detect"): ...``."""

    def __init__(self) -> None:
        self.spent: dict[str, list[float]] = {}
        self.started: dict[str, list[float]] = {}  # perf_counter at each entry's start

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.spent.setdefault(stage, []).append((time.perf_counter() - start) * 1000)
            self.started.setdefault(stage, []).append(start)

    def within(self, begin: float, end: float) -> dict[str, float]:
        """Return the ms each stage spent in entries that started between begin and end."""
        out = {}
        for stage, spent in self.spent.items():
            starts = self.started[stage]
            out[stage] = sum(ms for ms, at in zip(spent, starts, strict=True) if begin <= at <= end)
        return out

    def medians(self) -> dict[str, float]:
        return {stage: statistics.median(ms) for stage, ms in self.spent.items()}


def percentiles(seconds: list[float]) -> tuple[float, float]:
    """Return p50 and p99 in ms of measured seconds."""
    ms = np.array(seconds) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def throughput(search: Search, queries: np.ndarray, threads: int, seconds: float = 4.0) -> float:
    """Return searches per second with ``threads`` callers searching back to back."""
    done = [0] * threads
    stop = time.perf_counter() + seconds

    def caller(t: int) -> None:
        i = t
        while time.perf_counter() < stop:
            search(queries[i % len(queries)][None, :], 10)
            done[t] += 1
            i += threads

    workers = [threading.Thread(target=caller, args=(t,)) for t in range(threads)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(done) / (time.perf_counter() - start)


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * 4096 / 2**20


# --- databases and servers ------------------------------------------------------------------

"""What the benchmarks share: synthetic faces, timing, memory, servers, and RESULTS.md.

Every benchmark measures FaceDB against a baseline run in the same script, on the same
machine and data, and reports ratios; ``write_section`` replaces that benchmark's section
of bench/RESULTS.md and keeps the others.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import sqlalchemy as sa
import uvicorn

from facedb.config import Settings
from facedb.pipeline.base import Analyzer
from facedb.pipeline.embed import MODEL_NAME
from facedb.store.db import upgrade
from facedb.store.models import Embedding, Face, Person, Photo
from facedb.wiring import Services, build

RESULTS = Path(__file__).with_name("RESULTS.md")
D = 128
Search = Callable[[np.ndarray, int], Any]


# --- RESULTS.md ---------------------------------------------------------------------------
def write_section(text: str, section: str) -> None:
    """Replace one benchmark's section of RESULTS.md, keeping the others in their order."""
    existing = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    parts = existing.split("\n## ")
    head, sections = parts[0].rstrip("\n"), ["## " + p.rstrip("\n") for p in parts[1:]]
    new = text.rstrip("\n")
    replaced = [new if s.startswith(section) else s for s in sections]
    if new not in replaced:
        replaced.append(new)
    RESULTS.write_text("\n\n".join([head, *replaced]) + "\n")


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
        write_section(text, section)


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
def sqlite_services(folder: Path, analyzer: Analyzer | None = None, **settings: Any) -> Services:
    """Return started services over a fresh SQLite database in ``folder``."""
    config = Settings(data_dir=folder, database_url=f"sqlite:///{folder / 'bench.sqlite3'}",
                      **settings)  # fmt: skip
    upgrade(config.database_url)
    services = build(config, analyzer)
    services.start(load_models=analyzer is not None)
    return services


def insert_synthetic(
    services: Services, vectors: np.ndarray, status: str = "missing", rebuild: bool = True
) -> None:
    """Bulk-insert one person per 4 vectors and one photo and face per vector (no pipeline),
    stored under the model version the database serves (the vectors must have its length)."""
    version, dimension = services.index.model_version, services.index.dimension
    if vectors.shape[1] != dimension:
        raise ValueError(f"{vectors.shape[1]}-d vectors for a {dimension}-d recipe ({version})")
    people = [{"id": str(uuid.uuid4()), "name": f"synthetic {i}", "status": status,
               "attributes": {}} for i in range(len(vectors) // 4 + 1)]  # fmt: skip
    with services.store.engine.begin() as c:
        c.execute(sa.insert(Person), people)
        first = int(c.execute(sa.text("SELECT coalesce(max(id), 0) FROM faces")).scalar_one()) + 1
        photo_rows, face_rows, vector_rows = [], [], []
        for i, v in enumerate(vectors):
            photo, person = str(uuid.uuid4()), people[i // 4]["id"]
            photo_rows.append({"id": photo, "person_id": person, "content": b"", "width": 1,
                               "sha256": hashlib.sha256(photo.encode()).hexdigest(),
                               "media_type": "image/jpeg", "height": 1})  # fmt: skip
            face_rows.append({"id": first + i, "photo_id": photo, "person_id": person,
                              "box_x": 0, "box_y": 0, "box_w": 1, "box_h": 1, "landmarks": {},
                              "confidence": 1.0, "crop_jpeg": b""})  # fmt: skip
            vector_rows.append({"face_id": first + i, "generation": 1, "model_name": MODEL_NAME,
                                "model_version": version,
                                "vector": v.astype("<f4").tobytes()})  # fmt: skip
        c.execute(sa.insert(Photo), photo_rows)
        c.execute(sa.insert(Face), face_rows)
        c.execute(sa.insert(Embedding), vector_rows)
    if rebuild:
        services.index.rebuild()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(services: Services) -> Iterator[str]:
    """Run the app on ``services`` in this process; yield its URL. On leaving, the server is
    stopped and waited for (its shutdown saves the index) before anything else happens."""
    from api.app import create_app

    port = free_port()
    config = uvicorn.Config(create_app(services.settings, services), host="127.0.0.1",
                            port=port, log_level="warning")  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the benchmark server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=120)


FACEDB_SERVE = ["-m", "facedb.cli", "serve"]
TENSORFLOW_SERVE = ["-m", "bench.tensorflow_path"]


@dataclass(frozen=True)
class Served:
    """A server process the benchmark started: its pid, URL and seconds to its first answer."""

    pid: int
    url: str
    start_s: float


@contextmanager
def serve_process(
    env: dict[str, str], folder: Path, server: list[str] = FACEDB_SERVE
) -> Iterator[Served]:
    """Run a server (`facedb serve` unless told, SQLite in ``folder``, keyless local mode)
    as its own process; yield it once /v1/health answers, and stop it afterwards."""
    port = free_port()
    full = {**os.environ, "FACEDB_DATA_DIR": str(folder), "FACEDB_PORT": str(port), **env}
    subprocess.run([sys.executable, "-m", "facedb.cli", "db", "upgrade"], env=full, check=True,
                   capture_output=True)  # fmt: skip
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, *server], env=full,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(f"{url}/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{' '.join(server)} did not start")
            time.sleep(0.1)
        yield Served(process.pid, url, time.perf_counter() - start)
    finally:
        process.terminate()
        process.wait(60)

"""Enrollment throughput, HTTP search latency and concurrency, and one search's time by
stage: the ONNX Runtime path against the TensorFlow path it replaced and against deepface,
in the same run.

Run: .venv/bin/python -m bench.service_bench [--faces 100000] [--write]

1. Enrollment: the 5-celebrity train photos through the whole pipeline into the database
   (decode, detect, align, embed, age/gender, store, index) in batches of 1, 8 and 32
   photos per call, on both paths, against DeepFace.register (mtcnn + Facenet, SQLite).
2. Search: POST /v1/search over HTTP (a real uvicorn server, SQLite) with --faces synthetic
   embeddings inserted directly plus the real enrolled people: p50/p99 of one client over
   the val photos, then ten concurrent clients (searches/s), on both paths; against
   DeepFace.search on its SQLite backend holding the same vectors and people.
3. One search by stage (ONNX path): the server's own objects timed in place.
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
import time
from pathlib import Path

import httpx

from bench.common import arguments, face_like, percentiles, report, table
from bench.serving import (
    deepface_db,
    enroll_all,
    insert_synthetic,
    post_search,
    serving,
    sqlite_services,
)
from bench.stages import StageTimer, stage_rows
from bench.tensorflow_path import tensorflow_analyzer
from facedb.config import Settings
from facedb.models.sample_data import celebrity_dataset, photos
from facedb.pipeline.analyzer import FaceAnalyzer
from facedb.wiring import Services

SECTION = "## Service: enrollment throughput and find latency"
DEEPFACE = {"model_name": "Facenet", "detector_backend": "mtcnn", "normalization": "Facenet"}
CLIENTS = 10
PER_CLIENT = 6


def fresh(tmp: Path, analyzer: FaceAnalyzer) -> Services:
    """Services on a new SQLite file; uploads of up to 32 files (the largest batch here)."""
    return sqlite_services(tmp, analyzer, model_dir=analyzer.settings.models_path,
                           max_upload_files=32)  # fmt: skip


def deepface_register(paths: list[Path], db_path: Path) -> float:
    from deepface import DeepFace

    start = time.perf_counter()
    for path in paths:  # one call per photo: register's list form stops at the first faceless photo
        with contextlib.suppress(ValueError):  # no face: skipped, as FaceDB refuses it
            DeepFace.register(str(path), database_type="sqlite", connection_details=str(db_path),
                              enforce_detection=True, **DEEPFACE)  # fmt: skip
    return time.perf_counter() - start


def enrollment_rows(
    paths_: dict[str, FaceAnalyzer], train: dict[str, list[Path]]
) -> list[list[str]]:
    """Photos/s enrolling in batches of 1, 8 and 32 on each path, against DeepFace.register."""
    files = [p for group in train.values() for p in group]
    with tempfile.TemporaryDirectory() as tmp:
        theirs = len(files) / deepface_register(files, Path(tmp) / "df.sqlite3")
    rows = []
    for batch in (1, 8, 32):
        rates = {}
        for name, analyzer in paths_.items():
            with tempfile.TemporaryDirectory() as tmp:
                services = fresh(Path(tmp), analyzer)
                stored, seconds = enroll_all(services, train, batch)
                services.close()
            rates[name] = len(files) / seconds
            rows.append([f"{name}, batch {batch}", str(stored), f"{seconds:.1f}",
                         f"{rates[name]:.2f}", f"{rates[name] / theirs:.2f}x"])  # fmt: skip
        rows.append([f"ONNX / TensorFlow, batch {batch}", "", "",
                     f"{rates['ONNX Runtime'] / rates['TensorFlow']:.2f}x", ""])  # fmt: skip
    rows.append(["DeepFace.register", "—", f"{len(files) / theirs:.1f}", f"{theirs:.2f}", "1.00x"])
    return rows


def concurrent_rate(url: str, probes: list[Path]) -> tuple[float, float]:
    """Return (searches/s, p50 ms) with CLIENTS clients each searching PER_CLIENT times."""
    times: list[float] = []

    def client(c: int) -> None:
        with httpx.Client(base_url=url, timeout=600) as http:
            for i in range(PER_CLIENT):
                times.append(post_search(http, probes[(c * PER_CLIENT + i) % len(probes)]))

    workers = [threading.Thread(target=client, args=(c,)) for c in range(CLIENTS)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return len(times) / (time.perf_counter() - start), percentiles(times)[0]


def search_rows(
    paths_: dict[str, FaceAnalyzer],
    train: dict[str, list[Path]],
    probes: list[Path],
    synthetic: int,
) -> tuple[list[list[str]], list[list[str]], int]:
    """Return the search table (both paths), the ONNX stage table and the index size."""
    rows, stages, faces = [], [], 0
    for name, analyzer in paths_.items():
        with tempfile.TemporaryDirectory() as tmp:
            services = fresh(Path(tmp), analyzer)
            enroll_all(services, train, 32)
            insert_synthetic(services, face_like(synthetic, 42, services.index.dimension))
            faces = services.index.count
            with serving(services) as url, httpx.Client(base_url=url, timeout=120) as client:
                post_search(client, probes[0])  # warm-up
                one = [post_search(client, p) for p in probes * 2]
                rate, busy_p50 = concurrent_rate(url, probes)
                if name == "ONNX Runtime":
                    timer = StageTimer(services)
                    windows = []
                    with timer.installed() as clock:
                        for p in probes * 2:
                            begin = time.perf_counter()
                            post_search(client, p)
                            windows.append((begin, time.perf_counter()))
                    stages = stage_rows(clock, windows)
            p50, p99 = percentiles(one)
            rows.append([name, f"{p50:.0f}", f"{p99:.0f}", f"{rate:.2f}", f"{busy_p50:.0f}"])
    return rows, stages, faces


def deepface_find(train: dict[str, list[Path]], probes: list[Path], synthetic: int) -> dict:
    """Return DeepFace.search's (p50, p99) ms, exact and ann, on the same people and vectors."""
    from deepface import DeepFace

    theirs: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "df.sqlite3"
        deepface_register([p for files in train.values() for p in files], path)
        deepface_db(path, face_like(synthetic, seed=42))
        for method in ("exact", "ann"):
            if method == "ann":
                DeepFace.build_index(database_type="sqlite", connection_details=str(path),
                                     model_name="Facenet", detector_backend="mtcnn")  # fmt: skip
            spent = []
            for p in probes[:10]:
                start = time.perf_counter()
                with contextlib.suppress(ValueError):  # a probe without a face
                    DeepFace.search(str(p), database_type="sqlite", connection_details=str(path),
                                    search_method=method, k=5, **DEEPFACE)  # fmt: skip
                spent.append(time.perf_counter() - start)
            theirs[method] = percentiles(spent)
    return theirs


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--faces", type=int, default=100_000)
    args = parser.parse_args()
    settings = Settings()
    paths_ = {"ONNX Runtime": FaceAnalyzer(settings), "TensorFlow": tensorflow_analyzer(settings)}
    for analyzer in paths_.values():
        analyzer.load()
    data = celebrity_dataset(settings.cache_dir)
    train, val = photos(data / "train"), photos(data / "val")
    probes = [p for files in val.values() for p in files]
    enrollment = enrollment_rows(paths_, train)
    find, stages, faces = search_rows(paths_, train, probes, args.faces)
    ours, old = float(find[0][1]), float(find[1][1])
    find.append(["TensorFlow / ONNX", f"{old / ours:.1f}x", "",
                 f"{float(find[0][3]) / float(find[1][3]):.1f}x (ONNX / TensorFlow)", ""])  # fmt: skip
    theirs = deepface_find(train, probes, args.faces)
    find += [[f"DeepFace.search {method}", f"{p50:.0f}", f"{p99:.0f}", "—", "—"]
             for method, (p50, p99) in theirs.items()]  # fmt: skip
    lines = [
        SECTION, "",
        "Command: `.venv/bin/python -m bench.service_bench --write` (2-core CPU, no GPU, "
        "SQLite). Current recipe (chip + mirror) on both paths; the TensorFlow path is MTCNN "
        "and FaceNet as served before the ONNX port (`bench/tensorflow_path.py`).", "",
        *table(["enrollment", "photos stored", "seconds", "photos/s", "vs DeepFace.register"],
               enrollment),
        "", f"Search through HTTP with {faces:,} faces in the index ({args.faces:,} synthetic + "
        f"the enrolled train photos): one client, each of the {len(probes)} val photos twice; "
        f"then {CLIENTS} concurrent clients, {PER_CLIENT} searches each. DeepFace.search on the "
        "same vectors and people, 10 searches.", "",
        *table(["search", "p50 ms", "p99 ms", f"{CLIENTS} clients: searches/s",
                f"{CLIENTS} clients: p50 ms"], find),
        "", "One search by stage (ONNX path, same server, the val photos twice, each stage "
        "timed in place inside the server; per stage the median over the searches of its ms "
        "in each search, so the rows need not add up to the whole):", "",
        *table(["stage", "ms", "share"], stages),
    ]  # fmt: skip
    report("\n".join(lines) + "\n", SECTION, args.write)


if __name__ == "__main__":
    main()

"""Enrollment throughput and HTTP find latency, each against deepface in the same run.

Run: .venv/bin/python -m bench.service_bench [--faces 100000] [--write]

1. Enrollment: the 5-celebrity train photos through the whole pipeline into the database
   (decode, detect, align, embed, age/gender, store, index) in batches of 1, 8 and 32
   photos per call, against DeepFace.register (mtcnn + Facenet, SQLite) on the same photos.
2. Find: POST /v1/search over HTTP (a real uvicorn server, SQLite) with --faces synthetic
   embeddings inserted directly plus the real enrolled people, p50/p99 over the val
   photos; against DeepFace.search on its SQLite backend holding the same vectors and the
   same real people (exact and ann).
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import (
    arguments,
    face_like,
    insert_synthetic,
    percentiles,
    report,
    serving,
    sqlite_services,
    table,
)
from bench.index_bench import deepface_db
from facedb.config import Settings
from facedb.pipeline.analyzer import FaceAnalyzer
from facedb.sample_data import celebrity_dataset, photos
from facedb.services.uploads import Upload
from facedb.wiring import Services

SECTION = "## Service: enrollment throughput and find latency"
DEEPFACE = {"model_name": "Facenet", "detector_backend": "mtcnn", "normalization": "Facenet"}


def fresh(tmp: Path, analyzer: FaceAnalyzer) -> Services:
    return sqlite_services(tmp, analyzer, model_dir=analyzer.settings.models_path)


def enroll_all(services: Services, people: dict[str, list[Path]], batch: int) -> tuple[int, float]:
    start = time.perf_counter()
    stored = 0
    for name, files in people.items():
        person = services.persons.create({"name": name})
        for i in range(0, len(files), batch):
            chunk = [Upload(str(f), io.BytesIO(f.read_bytes())) for f in files[i : i + batch]]
            stored += services.enrollment.enroll(person.id, chunk).stored
    return stored, time.perf_counter() - start


def deepface_register(paths: list[Path], db_path: Path) -> float:
    from deepface import DeepFace

    start = time.perf_counter()
    for path in paths:  # one call per photo: register's list form stops at the first faceless photo
        with contextlib.suppress(ValueError):  # no face: skipped, as FaceDB refuses it
            DeepFace.register(str(path), database_type="sqlite", connection_details=str(db_path),
                              enforce_detection=True, **DEEPFACE)  # fmt: skip
    return time.perf_counter() - start


def enrollment_rows(analyzer: FaceAnalyzer, train: dict[str, list[Path]]) -> list[list[str]]:
    """Photos/s enrolling in batches of 1, 8 and 32, against DeepFace.register."""
    paths = [p for files in train.values() for p in files]
    with tempfile.TemporaryDirectory() as tmp:
        theirs = len(paths) / deepface_register(paths, Path(tmp) / "df.sqlite3")
    rows = []
    for batch in (1, 8, 32):
        with tempfile.TemporaryDirectory() as tmp:
            services = fresh(Path(tmp), analyzer)
            stored, seconds = enroll_all(services, train, batch)
            services.close()
        rate = len(paths) / seconds
        rows.append([f"FaceDB, batch {batch}", str(stored), f"{seconds:.1f}", f"{rate:.2f}",
                     f"{rate / theirs:.2f}x"])  # fmt: skip
    rows.append(["DeepFace.register", "—", f"{len(paths) / theirs:.1f}", f"{theirs:.2f}", "1.00x"])
    return rows


def find_over_http(
    analyzer: FaceAnalyzer, train: dict[str, list[Path]], probes: list[Path], synthetic: int
) -> tuple[list[float], int]:
    """Return the seconds of each POST /v1/search (every probe twice) and the index size."""
    with tempfile.TemporaryDirectory() as tmp:
        services = fresh(Path(tmp), analyzer)
        enroll_all(services, train, 32)
        insert_synthetic(services, face_like(synthetic, seed=42))
        times = []
        with serving(services) as url, httpx.Client(base_url=url, timeout=120) as client:
            first = probes[0].read_bytes()
            client.post("/v1/search", files={"file": ("w.jpg", first, "image/jpeg")})
            for path in probes * 2:
                start = time.perf_counter()
                reply = client.post(
                    "/v1/search", files={"file": ("p.jpg", path.read_bytes(), "image/jpeg")}
                )
                times.append(time.perf_counter() - start)
                assert reply.status_code in (200, 422), reply.text
        faces = services.index.count
        services.close()
    return times, faces


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
    analyzer = FaceAnalyzer(settings)
    analyzer.load()
    data = celebrity_dataset(settings.cache_dir)
    train, val = photos(data / "train"), photos(data / "val")
    probes = [p for files in val.values() for p in files]
    enrollment = enrollment_rows(analyzer, train)
    times, faces = find_over_http(analyzer, train, probes, args.faces)
    ours = percentiles(times)
    theirs = deepface_find(train, probes, args.faces)
    find = [["FaceDB POST /v1/search (exact)", f"{ours[0]:.0f}", f"{ours[1]:.0f}", "—"]]
    find += [[f"DeepFace.search {method}", f"{p50:.0f}", f"{p99:.0f}", f"{p50 / ours[0]:.1f}x"]
             for method, (p50, p99) in theirs.items()]  # fmt: skip
    lines = [
        SECTION, "",
        "Command: `.venv/bin/python -m bench.service_bench --write` (2-core CPU, no GPU).", "",
        *table(["enrollment", "photos stored", "seconds", "photos/s", "vs DeepFace.register"],
               enrollment),
        "", f"Find through HTTP with {faces:,} faces in the index ({args.faces:,} synthetic + the "
        f"enrolled train photos), {len(times)} searches with the val photos; DeepFace.search on "
        "the same vectors and people, 10 searches.", "",
        *table(["find", "p50 ms", "p99 ms", "DeepFace p50 / FaceDB p50"], find),
    ]  # fmt: skip
    text = "\n".join(lines) + "\n"
    report(text, SECTION, args.write)


if __name__ == "__main__":
    main()

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

import argparse
import contextlib
import hashlib
import io
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import sqlalchemy as sa
import uvicorn

from bench.index_bench import deepface_db, face_like
from bench.pipeline_bench import write_section
from facedb.config import Settings
from facedb.domain import UploadStatus
from facedb.pipeline.analyzer import FaceAnalyzer
from facedb.pipeline.embed import MODEL_NAME
from facedb.pipeline.recipes import CURRENT
from facedb.sample_data import celebrity_dataset, photos
from facedb.service.context import FaceDB
from facedb.service.enrollment import enroll
from facedb.service.persons import create_person
from facedb.service.uploads import Upload
from facedb.store.db import upgrade
from facedb.store.models import Embedding, Face, Person, Photo

SECTION = "## Service: enrollment throughput and find latency"
DEEPFACE = {"model_name": "Facenet", "detector_backend": "mtcnn", "normalization": "Facenet"}


def fresh_db(tmp: Path, analyzer: FaceAnalyzer) -> FaceDB:
    settings = Settings(data_dir=tmp, database_url=f"sqlite:///{tmp / 'b.sqlite3'}",
                        model_dir=analyzer.settings.models_path)  # fmt: skip
    upgrade(settings.database_url)
    db = FaceDB(settings, analyzer=analyzer)
    db.start()
    return db


def enroll_all(db: FaceDB, people: dict[str, list[Path]], batch: int) -> tuple[int, float]:
    start = time.perf_counter()
    stored = 0
    for name, files in people.items():
        person = create_person(db, {"name": name})
        for i in range(0, len(files), batch):
            chunk = [Upload(str(f), io.BytesIO(f.read_bytes())) for f in files[i : i + batch]]
            stored += enroll(db, person.id, chunk).count(UploadStatus.STORED)
    return stored, time.perf_counter() - start


def deepface_register(paths: list[Path], db_path: Path) -> float:
    from deepface import DeepFace

    start = time.perf_counter()
    for path in paths:  # one call per photo: register's list form stops at the first faceless photo
        with contextlib.suppress(ValueError):  # no face: skipped, as FaceDB refuses it
            DeepFace.register(str(path), database_type="sqlite", connection_details=str(db_path),
                              enforce_detection=True, **DEEPFACE)  # fmt: skip
    return time.perf_counter() - start


def insert_synthetic(
    db: FaceDB, vectors: np.ndarray, status: str = "missing", rebuild: bool = True
) -> None:
    """Bulk-insert one person, photo and face per 4 vectors / per vector (no pipeline)."""
    people = [{"id": str(uuid.uuid4()), "name": f"synthetic {i}", "status": status, "attributes": {}}
              for i in range(len(vectors) // 4 + 1)]  # fmt: skip
    with db.engine.begin() as c:
        c.execute(sa.insert(Person), people)
        first = int(c.execute(sa.text("SELECT coalesce(max(id), 0) FROM faces")).scalar_one()) + 1
        photos_rows, faces_rows, emb_rows = [], [], []
        for i, v in enumerate(vectors):
            pid = str(uuid.uuid4())
            photos_rows.append({"id": pid, "person_id": people[i // 4]["id"], "sha256": hashlib.sha256(pid.encode()).hexdigest(),
                                "content": b"", "media_type": "image/jpeg", "width": 1, "height": 1})  # fmt: skip
            faces_rows.append({"id": first + i, "photo_id": pid, "person_id": people[i // 4]["id"], "box_x": 0, "box_y": 0,
                               "box_w": 1, "box_h": 1, "landmarks": {}, "confidence": 1.0, "crop_jpeg": b""})  # fmt: skip
            emb_rows.append({"face_id": first + i, "generation": 1, "model_name": MODEL_NAME,
                             "model_version": CURRENT.version, "vector": v.astype("<f4").tobytes()})  # fmt: skip
        c.execute(sa.insert(Photo), photos_rows)
        c.execute(sa.insert(Face), faces_rows)
        c.execute(sa.insert(Embedding), emb_rows)
    if rebuild:
        db.index.rebuild()


def serve(db: FaceDB) -> tuple[uvicorn.Server, str]:
    from api.app import create_app
    from tests.api.conftest import free_port

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(db.settings, db), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{port}"


def percentiles(seconds: list[float]) -> tuple[float, float]:
    ms = np.array(seconds) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--faces", type=int, default=100_000)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    settings = Settings()
    analyzer = FaceAnalyzer(settings)
    analyzer.load()
    data = celebrity_dataset(settings.cache_dir)
    train, val = photos(data / "train"), photos(data / "val")
    train_paths = [p for files in train.values() for p in files]
    probes = [p for files in val.values() for p in files]

    lines = [
        SECTION,
        "",
        "Command: `.venv/bin/python -m bench.service_bench --write` (2-core CPU, no GPU).",
        "",
    ]
    lines += [
        "| enrollment | photos stored | seconds | photos/s | vs DeepFace.register |",
        "|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        df_seconds = deepface_register(train_paths, Path(tmp) / "df.sqlite3")
    df_rate = len(train_paths) / df_seconds
    for batch in (1, 8, 32):
        with tempfile.TemporaryDirectory() as tmp:
            db = fresh_db(Path(tmp), analyzer)
            stored, seconds = enroll_all(db, train, batch)
            db.close()
        rate = len(train_paths) / seconds
        lines.append(
            f"| FaceDB, batch {batch} | {stored} | {seconds:.1f} | {rate:.2f} | {rate / df_rate:.2f}x |"
        )
    lines.append(f"| DeepFace.register | — | {df_seconds:.1f} | {df_rate:.2f} | 1.00x |")
    print("\n".join(lines), flush=True)

    vectors = face_like(args.faces, seed=42)
    with tempfile.TemporaryDirectory() as tmp:
        db = fresh_db(Path(tmp), analyzer)
        enroll_all(db, train, 32)
        insert_synthetic(db, vectors)
        server, url = serve(db)
        times = []
        with httpx.Client(base_url=url, timeout=120) as client:
            client.post(
                "/v1/search", files={"file": ("w.jpg", probes[0].read_bytes(), "image/jpeg")}
            )
            for path in probes * 2:
                start = time.perf_counter()
                reply = client.post(
                    "/v1/search", files={"file": ("p.jpg", path.read_bytes(), "image/jpeg")}
                )
                times.append(time.perf_counter() - start)
                assert reply.status_code in (200, 422), reply.text
        server.should_exit = True
        faces_total = db.index.count
        db.close()
    ours = percentiles(times)

    from deepface import DeepFace

    theirs: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "df.sqlite3"
        deepface_register(train_paths, path)
        deepface_db(path, vectors)
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
    lines += ["", f"Find through HTTP with {faces_total:,} faces in the index ({args.faces:,} synthetic + the enrolled train photos), "
              f"{len(times)} searches with the val photos; DeepFace.search on the same vectors and people, 10 searches.", "",
              "| find | p50 ms | p99 ms | DeepFace p50 / FaceDB p50 |", "|---|---|---|---|",
              f"| FaceDB POST /v1/search (exact) | {ours[0]:.0f} | {ours[1]:.0f} | — |"]  # fmt: skip
    for method, (p50, p99) in theirs.items():
        lines.append(f"| DeepFace.search {method} | {p50:.0f} | {p99:.0f} | {p50 / ours[0]:.1f}x |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        write_section(text, SECTION)


if __name__ == "__main__":
    main()

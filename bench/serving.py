"""The benchmarks' services and servers: a SQLite-backed FaceDB in-process, synthetic faces
written straight to its store, a uvicorn server on a free port or a ``facedb serve`` process,
enrollment of a folder of photos, one timed HTTP search, and DeepFace's own database filled
with the same vectors (the baseline)."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
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
from facedb.services.uploads import Upload
from facedb.store.db import upgrade
from facedb.store.models import Embedding, Face, Person, Photo
from facedb.wiring import Services, build


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


def enroll_all(services: Services, people: dict[str, list[Path]], batch: int) -> tuple[int, float]:
    start = time.perf_counter()
    stored = 0
    for name, files in people.items():
        person = services.persons.create({"name": name})
        for i in range(0, len(files), batch):
            chunk = [Upload(str(f), io.BytesIO(f.read_bytes())) for f in files[i : i + batch]]
            stored += services.enrollment.enroll(person.id, chunk).stored
    return stored, time.perf_counter() - start


def post_search(client: httpx.Client, path: Path) -> float:
    start = time.perf_counter()
    reply = client.post("/v1/search", files={"file": ("p.jpg", path.read_bytes(), "image/jpeg")})
    assert reply.status_code in (200, 422), reply.text
    return time.perf_counter() - start


def deepface_db(path: Path, vectors: np.ndarray) -> None:
    """Fill DeepFace's SQLite schema with the same vectors (a tiny face blob each)."""
    from deepface.modules.database.sqlite import SqliteClient

    client = SqliteClient(connection_details=str(path))
    face = np.zeros((1, 1, 3), dtype=np.float32).tobytes()
    rows = []
    for i, v in enumerate(vectors.astype("<f8")):
        emb = v.tobytes()
        rows.append((f"img{i}.jpg", face, "[1, 1, 3]", "Facenet", "mtcnn", 1, 0, emb,
                     hashlib.sha256(str(i).encode()).hexdigest(), hashlib.sha256(emb).hexdigest()))  # fmt: skip
    client.conn.executemany(
        "INSERT INTO embeddings (img_name, face, face_shape, model_name, detector_backend, aligned,"
        " l2_normalized, embedding, face_hash, embedding_hash) VALUES (?,?,?,?,?,?,?,?,?,?)",
        rows,
    )
    client.conn.commit()
    client.close()

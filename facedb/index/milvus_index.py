"""Milvus: one collection of face vectors shared by every service process.

``FACEDB_MILVUS_URI`` names the deployment: a local path runs Milvus Lite inside this
process (a Lite file serves one process at a time), an ``http://host:19530`` address a
Milvus server or cluster, which any number of FaceDB processes share. The collection holds
``id`` (the face id, primary key) and ``vector`` (float32, unit length) under a FLAT index
with the inner-product metric: exact search, scores equal to the cosine. Every read is
made at ``Strong`` consistency, so a search sees every write acknowledged before it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pymilvus import DataType, MilvusClient, MilvusException

from facedb.config import is_milvus_server
from facedb.errors import IndexUnavailable
from facedb.index.base import as_ids, as_vectors, empty_results, padded

log = logging.getLogger(__name__)

MAX_TOPK = 16_384  # Milvus returns at most this many results per query
WRITE_ROWS = 5_000  # rows per insert or upsert call (keeps each message well below 64 MiB)
# Rows Milvus holds in a growing segment are searched without the index (in Milvus Lite, by
# a Python scan: 1.4 s a query at 10^5 rows against 38 ms once sealed), so a write of at
# least this many rows is flushed: sealed and indexed before the write returns.
SEAL_ROWS = 1_000
_ID, _VECTOR = "id", "vector"
CHECK_TIMEOUT_S = 3.0  # a readiness check: the health route and the background wait this long


class _QuietUnimplemented(logging.Filter):
    """Milvus Lite's embedded server does not implement AllocTimestamp, which pymilvus asks
    for once per client: grpc logs that refusal as an ERROR with a traceback at every start.
    It is harmless (pymilvus falls back to the server's own timestamps), so it is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, NotImplementedError):
            return True
        frames = error.__traceback__
        while frames is not None:
            if frames.tb_frame.f_code.co_name == "AllocTimestamp":
                return False
            frames = frames.tb_next
        return True


logging.getLogger("grpc._server").addFilter(_QuietUnimplemented())
# While a Milvus server is away pymilvus logs a traceback for every retried call, many a
# second. FaceDB says it once itself (503 index_unavailable, /v1/health, one log line per
# outage from the background work), so pymilvus's own lines are kept to what is critical.
logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
_lite_users: dict[str, int] = {}  # Milvus Lite file -> clients open on it in this process
_lite_lock = threading.Lock()


def is_lite(uri: str) -> bool:
    """Whether ``uri`` names a Milvus Lite file (a local path) rather than a server."""
    return not is_milvus_server(uri)


def connect(uri: str, token: str = "") -> MilvusClient:
    """Return a client for ``uri``, or raise ``IndexUnavailable`` saying what to check.

    For a Milvus Lite file this starts (or joins) its server inside this process.
    """
    if is_lite(uri):
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
    try:
        client = MilvusClient(uri=uri, token=token)
    except Exception as exc:  # pymilvus raises several unrelated classes here
        hint = (
            "is another process using this Milvus Lite file? A Lite file serves one process: "
            "stop the other, or run a Milvus server for several (docs/OPERATIONS.md, "
            "'Scaling out'); else "
            "check that its folder is writable"
            if is_lite(uri)
            else "check that the Milvus server runs and FACEDB_MILVUS_URI/TOKEN are right"
        )
        raise IndexUnavailable(f"cannot open Milvus at {uri} ({exc}); {hint}") from exc
    if is_lite(uri):
        with _lite_lock:
            _lite_users[uri] = _lite_users.get(uri, 0) + 1
    return client


def disconnect(client: MilvusClient, uri: str) -> None:
    """Close the client; the last one of a Milvus Lite file also stops its server, which
    lets another process open the file."""
    client.close()
    if not is_lite(uri):
        return
    with _lite_lock:
        left = _lite_users.get(uri, 1) - 1
        _lite_users[uri] = left
    if left <= 0:
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_server(uri)


@contextmanager
def _milvus_errors(action: str, collection: str) -> Iterator[None]:
    try:
        yield
    except MilvusException as exc:
        raise IndexUnavailable(f"Milvus failed to {action} {collection}: {exc}") from exc


class MilvusIndex:
    """Exact cosine top-k over one Milvus collection. Build with ``create`` or ``open``."""

    def __init__(self, client: MilvusClient, collection: str, dimension: int) -> None:
        self.client = client
        self.collection = collection
        self.dimension = dimension

    # --- construction ---------------------------------------------------------------
    @classmethod
    def create(cls, client: MilvusClient, collection: str, dimension: int) -> MilvusIndex:
        """Create an empty, loaded collection (an existing one of that name is dropped)."""
        with _milvus_errors("create", collection):
            if client.has_collection(collection):
                client.drop_collection(collection)
            schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field(_ID, DataType.INT64, is_primary=True)
            schema.add_field(_VECTOR, DataType.FLOAT_VECTOR, dim=dimension)
            params = client.prepare_index_params()
            params.add_index(field_name=_VECTOR, index_type="FLAT", metric_type="IP")
            client.create_collection(
                collection, schema=schema, index_params=params, consistency_level="Strong"
            )
            client.load_collection(collection)
        return cls(client, collection, dimension)

    @classmethod
    def open(cls, client: MilvusClient, collection: str, dimension: int) -> MilvusIndex | None:
        """Return the existing collection, loaded; None when it is missing or of another
        dimension."""
        with _milvus_errors("open", collection):
            if not collection or not client.has_collection(collection):
                return None
            fields = client.describe_collection(collection)["fields"]
            dims = [f["params"].get("dim") for f in fields if f["name"] == _VECTOR]
            if dims != [dimension]:
                log.warning("Milvus collection %s holds other vectors (%s)", collection, dims)
                return None
            client.load_collection(collection)
        return cls(client, collection, dimension)

    def ready(self) -> None:
        """Raise IndexUnavailable, saying why, unless the collection answers searches: the
        server is unreachable, the collection is gone, or it is not loaded (a restarted
        server releases every collection: this starts loading it, without waiting)."""
        try:
            state = self.client.get_load_state(self.collection, timeout=CHECK_TIMEOUT_S)
        except MilvusException as exc:
            raise IndexUnavailable(f"Milvus is unreachable: {exc.message}") from exc
        name = getattr(state.get("state"), "name", str(state.get("state")))
        if name == "Loaded":
            return
        if name == "NotExist":
            raise IndexUnavailable(
                f"the Milvus collection {self.collection} is gone (dropped outside FaceDB); "
                "restart the service or run `facedb reindex` to rebuild it"
            )
        if name == "NotLoad":
            try:
                self.client.load_collection(self.collection, _async=True)
            except MilvusException as exc:
                raise IndexUnavailable(f"Milvus could not load {self.collection}: {exc}") from exc
        progress = state.get("progress", 0)
        raise IndexUnavailable(
            f"the Milvus collection {self.collection} is loading ({progress}%) after the "
            "server restarted; searches resume when it is loaded"
        )

    def drop(self) -> None:
        with _milvus_errors("drop", self.collection):
            self.client.drop_collection(self.collection)

    # --- queries and updates ------------------------------------------------------------
    @property
    def count(self) -> int:
        with _milvus_errors("count", self.collection):
            rows = self.client.query(self.collection, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    @property
    def exact_scores(self) -> bool:
        return True  # float32 vectors, FLAT index

    def describe(self) -> dict[str, object]:
        return {"backend": "milvus", "kind": "flat", "collection": self.collection}

    def ids(self) -> NDArray[np.int64]:
        found: list[int] = []
        with _milvus_errors("list the ids of", self.collection):
            iterator = self.client.query_iterator(
                self.collection, batch_size=10_000, filter="", output_fields=[_ID]
            )
            try:
                while batch := iterator.next():
                    found.extend(int(row[_ID]) for row in batch)
            finally:
                iterator.close()
        return np.asarray(found, dtype=np.int64)

    def add(self, ids: NDArray[np.int64], vectors: NDArray[np.float32]) -> None:
        """Upsert vectors: an id already present is replaced."""
        self._write(self.client.upsert, ids, vectors)

    def insert(self, ids: NDArray[np.int64], vectors: NDArray[np.float32]) -> None:
        """Insert vectors whose ids are not present (a fresh collection's bulk load; call
        ``seal`` when it is complete)."""
        self._write(self.client.insert, ids, vectors, seal=False)

    def seal(self) -> None:
        """Flush: seal what was written and index it, so searches use the index."""
        with _milvus_errors("flush", self.collection):
            self.client.flush(self.collection)

    def _write(
        self,
        write: Callable[..., Any],
        ids: NDArray[np.int64],
        vectors: NDArray[np.float32],
        seal: bool = True,
    ) -> None:
        ids = as_ids(ids)
        vectors = as_vectors(vectors, self.dimension)
        with _milvus_errors("write to", self.collection):
            for start in range(0, len(ids), WRITE_ROWS):
                chunk = zip(
                    ids[start : start + WRITE_ROWS].tolist(),
                    vectors[start : start + WRITE_ROWS],
                    strict=True,
                )
                write(self.collection, [{_ID: i, _VECTOR: v} for i, v in chunk])
            if seal and len(ids) >= SEAL_ROWS:
                self.client.flush(self.collection)

    def remove(self, ids: NDArray[np.int64]) -> None:
        ids = as_ids(ids)
        if not len(ids):
            return
        with _milvus_errors("delete from", self.collection):
            for start in range(0, len(ids), WRITE_ROWS):
                self.client.delete(self.collection, ids=ids[start : start + WRITE_ROWS].tolist())

    def search(
        self, queries: NDArray[np.float32], k: int
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        queries = as_vectors(queries, self.dimension)
        k = max(1, int(k))
        if not len(queries):
            return empty_results(0, k)
        with _milvus_errors("search", self.collection):
            hits: Any = self.client.search(
                self.collection,
                data=list(queries),
                limit=min(k, MAX_TOPK),
                search_params={"metric_type": "IP"},
                output_fields=[_ID],
            )
        width = max((len(row) for row in hits), default=0)
        scores, ids = empty_results(len(queries), max(width, 1))
        for r, row in enumerate(hits):
            for c, hit in enumerate(row):
                ids[r, c] = int(hit["id"])
                scores[r, c] = float(hit["distance"])
        return padded(scores, ids, k)

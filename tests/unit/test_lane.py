"""The search lane: concurrent searches share index calls and get exactly their own rows."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from facedb.domain import IndexKind
from facedb.index.faiss_index import FaissIndex
from facedb.index.lane import SearchLane
from tests.unit.test_vector_index import D, unit_vectors


def test_concurrent_searches_share_calls_and_get_their_own_rows() -> None:
    index = FaissIndex.build(
        D, np.arange(5000), unit_vectors(5000, 1), IndexKind.FLAT, device="cpu"
    )

    def slow(queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        time.sleep(0.02)  # long enough that the other callers queue behind the first
        return index.search(queries, k)

    lane = SearchLane(slow)
    queries = unit_vectors(32, 2)
    got: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    start = threading.Barrier(32)

    def one(i: int) -> None:
        start.wait()
        got[i] = lane.search(queries[i : i + 1], 3 + i % 5)  # different k per caller

    threads = [threading.Thread(target=one, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert lane.calls < 32 / 2  # batched
    for i in range(32):
        scores, ids = got[i]
        expected_scores, expected_ids = index.search(queries[i : i + 1], 3 + i % 5)
        assert np.array_equal(ids, expected_ids)
        assert np.allclose(scores, expected_scores)


def test_an_index_error_reaches_every_caller_and_the_lane_recovers() -> None:
    calls = {"n": 0}

    def failing(queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("index gone")
        return np.zeros((len(queries), k), np.float32), np.zeros((len(queries), k), np.int64)

    lane = SearchLane(failing)
    with pytest.raises(RuntimeError, match="index gone"):
        lane.search(np.zeros((1, D), np.float32), 2)
    scores, ids = lane.search(np.zeros((2, D), np.float32), 2)
    assert scores.shape == ids.shape == (2, 2)

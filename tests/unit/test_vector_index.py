"""The vector indexes against a brute-force numpy reference on seeded synthetic unit
vectors: FAISS (flat, fp16, IVF) and the Milvus collection (Milvus Lite)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pymilvus import MilvusClient

from facedb.domain import IndexKind
from facedb.index.base import VectorIndex
from facedb.index.faiss_index import FaissIndex
from facedb.index.milvus_index import MilvusIndex, connect, disconnect

D = 128


def unit_vectors(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, D)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute_force(store: dict[int, np.ndarray], queries: np.ndarray, k: int) -> np.ndarray:
    ids = np.fromiter(store, dtype=np.int64)
    matrix = np.stack([store[i] for i in ids.tolist()])
    scores = queries @ matrix.T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return ids[order]


@pytest.fixture
def milvus_lite(tmp_path: Path) -> Iterator[MilvusClient]:
    uri = str(tmp_path / "milvus.db")
    client = connect(uri)
    yield client
    disconnect(client, uri)


def build(
    backend: str, ids: np.ndarray, vectors: np.ndarray, request: pytest.FixtureRequest
) -> VectorIndex:
    if backend == "milvus":
        index = MilvusIndex.create(request.getfixturevalue("milvus_lite"), "faces", D)
        index.insert(ids, vectors)
        index.seal()
        return index
    return FaissIndex.build(D, ids, vectors, kind=IndexKind(backend), device="cpu")


@pytest.mark.parametrize("backend", ["flat", "fp16", "milvus"])
@pytest.mark.parametrize("n", [10_000, 50_000])
def test_exact_search_matches_brute_force_with_interleaved_adds_and_removes(
    n: int, backend: str, request: pytest.FixtureRequest
) -> None:
    vectors = unit_vectors(n, seed=n)
    ids = np.arange(1, n + 1, dtype=np.int64) * 7  # sparse, database-like ids
    half = n // 2
    index = build(backend, ids[:half], vectors[:half], request)
    store = {int(i): v for i, v in zip(ids[:half], vectors[:half], strict=True)}
    rng = np.random.default_rng(0)
    for step in range(5):
        lo, hi = half + step * (half // 5), half + (step + 1) * (half // 5)
        index.add(ids[lo:hi], vectors[lo:hi])
        store.update({int(i): v for i, v in zip(ids[lo:hi], vectors[lo:hi], strict=True)})
        doomed = rng.choice(np.fromiter(store, dtype=np.int64), size=n // 50, replace=False)
        index.remove(doomed)
        for i in doomed.tolist():
            del store[i]
        assert index.count == len(store)
        queries = unit_vectors(20, seed=100 + step)
        scores, found = index.search(queries, 10)
        expected = brute_force(store, queries, 10)
        true = np.array([[queries[r] @ store[int(i)] for i in row] for r, row in enumerate(found)])
        if index.exact_scores:
            assert np.array_equal(found, expected)
            assert np.abs(scores - true).max() < 1e-5
            continue
        # Half precision: the same ranking up to ties closer than its rounding (~1e-3).
        best = np.array(
            [[queries[r] @ store[int(i)] for i in row] for r, row in enumerate(expected)]
        )
        assert np.abs(true - best).max() < 2e-3
        assert np.abs(scores - true).max() < 2e-3
        assert np.mean(found == expected) > 0.9
    assert set(index.ids().tolist()) == set(store)


def clustered_unit_vectors(n: int, clusters: int, seed: int) -> np.ndarray:
    """Face-like data: many people, each a tight cluster of photos (uniform noise is IVF's
    worst case and unlike any face collection)."""
    rng = np.random.default_rng(seed)
    centers = unit_vectors(clusters, seed + 1)
    x = centers[rng.integers(0, clusters, n)] + 0.08 * rng.standard_normal((n, D))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_ivf_recall_against_exact() -> None:
    vectors = clustered_unit_vectors(20_000, clusters=2000, seed=3)
    ids = np.arange(20_000, dtype=np.int64)
    exact = FaissIndex.build(D, ids, vectors, kind=IndexKind.FLAT, device="cpu")
    ivf = FaissIndex.build(D, ids, vectors, kind="ivf", nlist=128, nprobe=32, device="cpu")
    assert ivf.kind == "ivf"
    queries = vectors[:200] + 0.05 * unit_vectors(200, seed=4)
    _, truth = exact.search(queries, 10)
    _, approx = ivf.search(queries, 10)
    recall = np.mean([len(set(a) & set(t)) / 10 for a, t in zip(approx, truth, strict=True)])
    assert recall >= 0.9


def test_ivf_with_too_few_vectors_falls_back_to_exact() -> None:
    index = FaissIndex.build(D, np.arange(10), unit_vectors(10, 5), kind="ivf", device="cpu")
    assert index.kind == "flat"


def test_results_pad_with_minus_one() -> None:
    index = FaissIndex.build(D, np.array([5, 9]), unit_vectors(2, 6), device="cpu")
    scores, ids = index.search(unit_vectors(1, 7), 4)
    assert ids[0, 2:].tolist() == [-1, -1]
    assert np.isneginf(scores[0, 2:]).all()
    empty = FaissIndex.build(D, np.array([], dtype=np.int64), np.zeros((0, D)), device="cpu")
    assert empty.search(unit_vectors(1, 8), 3)[1].tolist() == [[-1, -1, -1]]


def test_add_replaces_an_existing_id() -> None:
    a, b = unit_vectors(2, 9)
    index = FaissIndex.build(D, np.array([1]), a[None], device="cpu")
    index.add(np.array([1]), b[None])
    scores, ids = index.search(b[None], 2)
    assert index.count == 1 and ids[0, 0] == 1 and scores[0, 0] == pytest.approx(1.0, abs=2e-3)


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    vectors = unit_vectors(1000, 10)
    index = FaissIndex.build(D, np.arange(1000), vectors, device="cpu")
    index.remove(np.arange(0, 1000, 2))
    index.save(tmp_path / "faces.faiss")
    loaded = FaissIndex.load(tmp_path / "faces.faiss", device="cpu")
    assert loaded.count == 500 and loaded.contains(1) and not loaded.contains(2)
    q = unit_vectors(5, 11)
    assert np.array_equal(loaded.search(q, 5)[1], index.search(q, 5)[1])


def test_concurrent_searches_while_writing() -> None:
    vectors = unit_vectors(6000, 12)
    index = FaissIndex.build(D, np.arange(3000), vectors[:3000], device="cpu")
    errors: list[BaseException] = []
    stop = threading.Event()

    def searcher() -> None:
        try:
            while not stop.is_set():
                _, ids = index.search(vectors[:8], 5)
                assert (ids[:, 0] >= 0).all()
        except BaseException as exc:  # surfaced to the test thread below
            errors.append(exc)

    threads = [threading.Thread(target=searcher) for _ in range(4)]
    for t in threads:
        t.start()
    for start in range(3000, 6000, 300):
        index.add(np.arange(start, start + 300), vectors[start : start + 300])
        index.remove(np.arange(start - 3000, start - 2900))
    stop.set()
    for t in threads:
        t.join()
    assert errors == []
    assert index.count == 3000 + 3000 - 10 * 100

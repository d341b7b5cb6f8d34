"""The batch cross-match's numpy selection gives what the one person loop gives, face for
face (synthetic unit vectors: many persons with several faces each, so a query's first
fetch often holds fewer than k persons and must be widened)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from facedb.casework import batch
from facedb.domain import Register
from facedb.index.persons import top_persons
from facedb.records import RegisterFace
from tests.factories import unit_vectors


def matrix(register: Register, persons: list[int], vectors: np.ndarray,
           numbers: dict[str, int]) -> batch.RegisterMatrix:  # fmt: skip
    faces = [
        RegisterFace(
            i + 1,
            f"{register}-{p}",
            f"photo-{i}",
            register,
            date(2020, 1, 1),
            None,
            30.0,
            None,
            None,
            None,
            None,
        )
        for i, p in enumerate(persons)
    ]
    return batch.RegisterMatrix.of(register, faces, vectors, numbers, "cpu")


@pytest.mark.parametrize("faces_per_person", [1, 12])
def test_block_hits_equal_the_person_loop(faces_per_person: int) -> None:
    rng = np.random.default_rng(faces_per_person)
    people = 60
    centres = unit_vectors(people, seed=3)
    persons = [p for p in range(people) for _ in range(faces_per_person)]
    noisy = centres[persons] + 0.3 * rng.standard_normal((len(persons), 128)).astype(np.float32)
    found_vectors = noisy / np.linalg.norm(noisy, axis=1, keepdims=True)
    queries = unit_vectors(50, seed=9)
    numbers: dict[str, int] = {}
    mine = matrix(Register.MISSING, list(range(50)), queries, numbers)
    other = matrix(Register.FOUND, persons, found_vectors, numbers)

    hits = batch.block_hits(mine, other, slice(10, 50), k=10, floor=-1.0)

    owners = {i: other.faces[i] for i in range(len(other.faces))}
    loop = top_persons(other.index.search, lambda: other.index.count, queries[10:50], 10,
                       lambda ids: {i: owners[i] for i in ids}, floor=-1.0)  # fmt: skip
    expected = {(row + 10, h.face_id, round(h.score, 5)) for row, found in enumerate(loop)
                for h in found}  # fmt: skip
    got = {(int(q), int(h), round(float(s), 5))
           for q, h, s in zip(hits.query, hits.hit, hits.score, strict=True)}  # fmt: skip
    assert got == expected
    assert len(got) == 40 * 10  # every query found its 10 persons


def test_a_found_face_does_not_resend_what_the_missing_side_sent() -> None:
    numbers: dict[str, int] = {}
    vectors = unit_vectors(6, seed=1)
    matrix(Register.MISSING, [0, 0, 1], vectors[:3], numbers)  # numbers its persons first
    found = matrix(Register.FOUND, [0, 1, 2], vectors[3:], numbers)
    sent = np.full((3, 2), -1, dtype=np.int64)
    from_missing = batch.Hits(np.array([0, 2]), np.array([1, 2]), np.array([0.9, 0.8], "f4"))
    batch.note_sent(sent, from_missing, found.persons)
    # Found face 1 hits missing face 0 (which sent found face 1's person) and face 1 (not).
    back = batch.Hits(np.array([1, 1]), np.array([0, 1]), np.array([0.7, 0.6], "f4"))
    assert batch.already_sent(back, found.persons, sent, 0).tolist() == [True, False]


def test_an_empty_other_register_gives_no_hits() -> None:
    # Found by schemathesis: `POST /v1/admin/crossmatch` with no found face at all.
    numbers: dict[str, int] = {}
    mine = matrix(Register.MISSING, [0, 1], unit_vectors(2, seed=1), numbers)
    other = matrix(Register.FOUND, [], np.zeros((0, 128), dtype=np.float32), numbers)
    hits = batch.block_hits(mine, other, slice(0, 2), k=10, floor=0.2)
    assert len(hits.query) == len(hits.hit) == len(hits.score) == 0

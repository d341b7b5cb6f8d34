"""The batch cross-match as matrix products: each register's faces against the other's.

Each register's vectors and what a pair records of each face are read once into memory (a
float32 flat index over positions 0..n-1; about 1 KiB a face). Then the missing register's
faces are searched against the found register ``BATCH_QUERIES`` at a time, and after them
the found register's against the missing one. A block's hits become persons with numpy
(``top_persons_matrix``: each person once, by their best face, the first k at or above the
floor); a query that needs more faces than the first fetch is widened by the one loop
every match goes through (``index.persons.top_persons``).

A pair of persons already sent from the missing side is not sent again from the found side:
the missing face's top persons are kept (k integers a face), and a found face's hit on a
missing face whose list holds the found person cannot score higher than what was sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from facedb.ages import age_at_photo, years_apart
from facedb.casework.checks import check_pair
from facedb.domain import IndexKind, Register
from facedb.index.faiss_index import FaissIndex
from facedb.index.persons import top_persons, top_persons_matrix
from facedb.records import RegisterFace
from facedb.store.models import PairSideColumns
from facedb.store.pair_writes import PairFields

BATCH_QUERIES = 8192  # query faces per matrix product (and per transaction)


@dataclass
class RegisterMatrix:
    """One register's faces for a batch run, by position: vectors in a flat index, what a
    pair records of each face, and each face's person as an integer."""

    register: Register
    faces: list[RegisterFace]
    face_ids: NDArray[np.int64]  # ascending
    vectors: NDArray[np.float32]
    persons: NDArray[np.int64]
    index: FaissIndex
    _sides: dict[int, PairSideColumns] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        register: Register,
        faces: list[RegisterFace],
        vectors: NDArray[np.float32],
        person_numbers: dict[str, int],
        device: str,
    ) -> RegisterMatrix:
        for face in faces:
            person_numbers.setdefault(face.person_id, len(person_numbers))
        persons = np.fromiter((person_numbers[f.person_id] for f in faces), np.int64, len(faces))
        index = FaissIndex.build(vectors.shape[1], np.arange(len(faces), dtype=np.int64),
                                 vectors, kind=IndexKind.FLAT, device=device)  # type: ignore[arg-type]  # fmt: skip
        face_ids = np.fromiter((f.face_id for f in faces), np.int64, len(faces))
        return cls(register, faces, face_ids, vectors, persons, index)

    def start_after(self, face_id: int) -> int:
        """Return the position of the first face with an id above ``face_id``."""
        return int(np.searchsorted(self.face_ids, face_id, side="right"))

    def side(self, position: int) -> PairSideColumns:
        """What a pair records of the face at ``position`` (worked out once per run)."""
        side = self._sides.get(position)
        if side is None:
            face = self.faces[position]
            age, source = age_at_photo(face.declared_age, face.estimated_age)
            side = PairSideColumns(face.person_id, face.face_id, face.photo_id, face.taken_at,
                                   age, source)  # fmt: skip
            self._sides[position] = side
        return side


@dataclass(frozen=True)
class Hits:
    """A block's face pairs: query position, hit position (in the other register), score."""

    query: NDArray[np.int64]
    hit: NDArray[np.int64]
    score: NDArray[np.float32]

    def without(self, drop: NDArray[np.bool_]) -> Hits:
        keep = ~drop
        return Hits(self.query[keep], self.hit[keep], self.score[keep])


def block_hits(
    mine: RegisterMatrix, other: RegisterMatrix, block: slice, k: int, floor: float
) -> Hits:
    """Return each query face's (``mine``'s faces in ``block``) up to k persons of the other
    register, best face each, at or above the floor."""
    queries = mine.vectors[block]
    offset = block.start
    total = other.index.count
    if total == 0:  # the other register holds no face yet: nothing to pair with
        nothing = np.zeros(0, dtype=np.int64)
        return Hits(nothing, nothing, np.zeros(0, dtype=np.float32))
    fetch = min(max(total, 1), max(8 * k, 64))
    scores, positions = other.index.search(queries, fetch)
    rows, cols, still_open = top_persons_matrix(scores, positions, other.persons, k, floor)
    if fetch >= total:
        still_open = np.zeros_like(still_open)
    keep = ~still_open[rows]
    query = rows[keep] + offset
    hit = positions[rows[keep], cols[keep]]
    score = scores[rows[keep], cols[keep]]
    widened = np.flatnonzero(still_open)
    if len(widened):  # more faces than the first fetch: the loop widens these few
        lookup = {i: _Person(str(other.persons[i])) for i in range(total)}
        found = top_persons(other.index.search, lambda: total, queries[widened], k,
                            lambda ids: {i: lookup[i] for i in ids}, floor=floor)  # fmt: skip
        extra = [(int(r) + offset, h.face_id, h.score)
                 for r, row in zip(widened, found, strict=True) for h in row]  # fmt: skip
        if extra:
            q, h, s = (np.asarray(v) for v in zip(*extra, strict=True))
            query, hit = np.concatenate([query, q]), np.concatenate([hit, h])
            score = np.concatenate([score, s.astype(np.float32)])
    return Hits(query.astype(np.int64), hit.astype(np.int64), score.astype(np.float32))


@dataclass(frozen=True)
class _Person:
    person_id: str  # the person's number, as an owner for the widening loop


def note_sent(sent: NDArray[np.int64], hits: Hits, persons: NDArray[np.int64]) -> None:
    """Write into ``sent`` (a row per missing face, -1 pads) the persons each query face's
    hits name, for ``already_sent``."""
    k = sent.shape[1]
    order = np.lexsort((-hits.score, hits.query))
    query, hit = hits.query[order], hits.hit[order]
    starts = np.searchsorted(query, query, side="left")
    place = np.arange(len(query)) - starts
    fits = place < k
    sent[query[fits], place[fits]] = persons[hit[fits]]


def already_sent(
    hits: Hits, query_persons: NDArray[np.int64], sent: NDArray[np.int64], offset: int
) -> NDArray[np.bool_]:
    """Return which found-side hits were sent from the missing side: the hit missing face's
    list (``sent``, by its position) names the query face's person."""
    if not len(hits.query):
        return np.zeros(0, dtype=bool)
    names = sent[hits.hit]  # (n, k) persons each hit missing face sent
    return (names == query_persons[hits.query - offset][:, None]).any(axis=1)


def pair_fields(missing: RegisterMatrix, found: RegisterMatrix, hits: Hits,
                missing_queries: bool) -> list[PairFields]:  # fmt: skip
    """Return one PairFields per pair of persons among the hits (its best face pair)."""
    m_pos, f_pos = (hits.query, hits.hit) if missing_queries else (hits.hit, hits.query)
    key = missing.persons[m_pos] * (int(found.persons.max(initial=0)) + 1) + found.persons[f_pos]
    order = np.lexsort((-hits.score, key))
    first = order[np.r_[True, key[order][1:] != key[order][:-1]]] if len(order) else order
    out = []
    for i in first.tolist():
        m, f = int(m_pos[i]), int(f_pos[i])
        m_side, f_side = missing.side(m), found.side(f)
        years = years_apart(m_side.taken_at, f_side.taken_at, m_side.age, f_side.age)
        checks = check_pair(missing.faces[m], found.faces[f])
        out.append(PairFields(float(hits.score[i]), m_side, f_side, years, checks))
    return out

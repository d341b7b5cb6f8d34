"""Cross-matching the missing register against the found one.

Every face of a person in a register is searched against the faces of the other register;
up to ``candidates_per_face`` persons scoring at least ``candidate_threshold`` become
candidate pairs for people to review. A pair of persons is one row whatever the number of
their faces: a later, better-scoring face pair raises it; a decided pair is never touched.
Scores are exact float32 cosines, whichever path found them.

Two paths, one loop (``facedb.index.persons.top_persons``):

- On enrollment (``sweep``): the new faces against the live index. An enrollment commits its
  faces with ``crossmatched_at`` unset; matching runs after the commit and sets it in the
  same transaction as the pairs it writes. A process that dies between the two leaves the
  faces unset, and the next sweep (after any enrollment, and every few seconds in each
  service) matches them. Matching never fails an enrollment.
- In batch (``run_batch``, `facedb crossmatch`): each register's vectors are read into a
  float32 flat index of their own, and every face of both registers is searched against
  the other's, ``BATCH_QUERIES`` at a time (matrix products over the stored vectors). Each
  block's pairs, the faces' marks and the run's progress commit together, so a crash
  resumes after the last block written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray

from facedb.ages import age_at_photo, years_apart
from facedb.config import Settings
from facedb.domain import IndexKind, MatchState, Register
from facedb.errors import FaceDBError
from facedb.index.face_index import FaceIndex
from facedb.index.faiss_index import FaissIndex
from facedb.index.persons import PersonHit, top_persons
from facedb.records import RegisterFace
from facedb.services.jobs import Job
from facedb.store.pairs import PairFields, PairSideColumns
from facedb.store.unit import Store

log = logging.getLogger(__name__)
QUERY_BATCH = 1024  # faces a sweep matches per round
BATCH_QUERIES = 4096  # faces the batch job searches per matrix product
# A pair is raised only by a score this much better than the one it records: the two paths
# compute one cosine with different summation orders (a few units in the 7th decimal).
RAISE_BY = 1e-4


@dataclass(frozen=True)
class _Owner:
    """Whose a face of a register is (the batch keeps one per face, nothing more)."""

    person_id: str


@dataclass(frozen=True)
class _RegisterIndex:
    """One register's faces for a batch run: a flat float32 index and whose each face is."""

    index: FaissIndex
    owners: dict[int, _Owner]

    def lookup(self, face_ids: Sequence[int]) -> dict[int, _Owner]:
        return {i: owner for i in face_ids if (owner := self.owners.get(i)) is not None}


@dataclass(frozen=True)
class CrossMatcher:
    """Finds, for faces of one register, candidate persons in the other, and keeps the
    pairs: on enrollment (``sweep``) and for whole registers (``run_batch``)."""

    settings: Settings
    store: Store
    index: FaceIndex

    def match(self, faces: list[RegisterFace], vectors: NDArray[np.float32]) -> list[PairFields]:
        """Return each face's candidate pairs from the live index, ranked from 1."""
        if not faces:
            return []
        found = self.index.top_persons(
            vectors,
            self.settings.candidates_per_face,
            self._describe,
            admit=lambda row, other: other.in_register is not faces[row].in_register,
            floor=self.settings.candidate_threshold,
        )
        return _pairs(faces, range(len(faces)), found)

    def _describe(self, face_ids: Sequence[int]) -> dict[int, RegisterFace]:
        with self.store.unit() as unit:
            return unit.registers.describe(face_ids)

    def record(
        self, pairs: list[PairFields], matched: list[RegisterFace], after: int | None = None
    ) -> int:
        """Write the pairs (inserted, or raised when a face pair scores better) and mark the
        faces matched, in one transaction (with the batch run's progress, ``after``);
        return the pairs written. A decided pair is never touched."""
        best: dict[tuple[str, str], PairFields] = {}
        for pair in pairs:
            if pair.key not in best or pair.score > best[pair.key].score:
                best[pair.key] = pair
        now = datetime.now(UTC)
        with self.store.unit() as unit:
            stored = unit.pairs.stored(list(best))
            new = [pair for key, pair in best.items() if key not in stored]
            raised = [
                (row.id, best[key])
                for key, row in stored.items()
                if row.state == MatchState.PENDING and best[key].score > row.score + RAISE_BY
            ]
            unit.pairs.insert(new, now)
            unit.pairs.raise_(raised, now)
            unit.registers.mark_matched([f.face_id for f in matched], now)
            if after is not None:
                unit.pairs.run_advance(after)
        return len(new) + len(raised)

    def sweep(self) -> int:
        """Cross-match every face waiting for it; return how many faces were matched.

        Never raises: a failure is logged and the faces wait for the next sweep.
        """
        done = 0
        try:
            while True:
                with self.store.unit() as unit:
                    faces, vectors = unit.registers.waiting(
                        self.index.generation, self.index.dimension, QUERY_BATCH
                    )
                if not faces:
                    return done
                self.index.catch_up()
                self.record(self.match(faces, vectors), faces)
                done += len(faces)
        except FaceDBError as exc:
            log.warning("cross-match sweep stopped: %s", exc.message)
        except Exception:  # a bug here must not fail the enrollment that triggered the sweep
            log.exception("cross-match sweep failed")
        return done

    def pending(self) -> int:
        """Return how many faces wait to be cross-matched (the lag)."""
        with self.store.unit() as unit:
            return unit.registers.count(waiting_only=True)

    def run_batch(self, job: Job, progress: Callable[[int], None] | None = None) -> None:
        """Match every face of both registers against the other, resuming a crashed run.

        Idempotent: pairs are upserted, so a second run adds nothing. Progress is committed
        with each block of query faces, so a crash resumes after the last block written.
        """
        self.index.catch_up()
        with self.store.unit() as unit:
            after = unit.pairs.run_start()
            job.total = unit.registers.count()
        registers = {r: self._register_index(r) for r in Register}
        job.counts.update({"faces": 0, "pairs_written": 0})
        while True:
            with self.store.unit() as unit:
                faces, vectors = unit.registers.after(
                    self.index.generation, self.index.dimension, after, BATCH_QUERIES
                )
            if not faces:
                break
            pairs = [p for r in Register for p in self._block(faces, vectors, r, registers)]
            after = faces[-1].face_id
            job.counts["pairs_written"] += self.record(pairs, faces, after)
            job.counts["faces"] += len(faces)
            job.advance(len(faces))
            if progress:
                progress(len(faces))
        with self.store.unit() as unit:
            unit.pairs.run_finish()

    def _register_index(self, register: Register) -> _RegisterIndex:
        """Read one register's vectors into a flat float32 index of their own."""
        with self.store.unit() as unit:
            ids, persons, vectors = unit.registers.vectors(
                register, self.index.generation, self.index.dimension
            )
        index = FaissIndex.build(self.index.dimension, ids, vectors, kind=IndexKind.FLAT,
                                 device=self.settings.index_device)  # fmt: skip
        owners = {int(i): _Owner(p) for i, p in zip(ids.tolist(), persons, strict=True)}
        return _RegisterIndex(index, owners)

    def _block(
        self,
        faces: list[RegisterFace],
        vectors: NDArray[np.float32],
        register: Register,
        registers: dict[Register, _RegisterIndex],
    ) -> list[PairFields]:
        """Return the pairs of a block's faces of ``register`` against the other one."""
        rows = [i for i, face in enumerate(faces) if face.in_register is register]
        if not rows:
            return []
        other = registers[register.other]
        found = top_persons(other.index.search, lambda: other.index.count, vectors[rows],
                            self.settings.candidates_per_face, other.lookup,
                            floor=self.settings.candidate_threshold)  # fmt: skip
        described = self._describe(sorted({h.face_id for hits in found for h in hits}))
        return _pairs(faces, rows, [
            [PersonHit(h.face_id, described[h.face_id], h.score, h.rank)
             for h in hits if h.face_id in described]  # deleted since the run read them
            for hits in found
        ])  # fmt: skip


def _pairs(
    faces: list[RegisterFace], rows: Sequence[int], found: list[list[PersonHit[RegisterFace]]]
) -> list[PairFields]:
    """Return the pairs of query faces ``faces[rows]`` and the persons found for each."""
    sides: dict[int, PairSideColumns] = {}  # each face's side, worked out once

    def side(face: RegisterFace) -> PairSideColumns:
        if face.face_id not in sides:
            age, source = age_at_photo(face.declared_age, face.estimated_age)
            sides[face.face_id] = PairSideColumns(face.person_id, face.face_id, face.photo_id,
                                                  face.taken_at, age, source)  # fmt: skip
        return sides[face.face_id]

    pairs = []
    for row, hits in zip(rows, found, strict=True):
        query = faces[row]
        for hit in hits:
            missing, found_side = (side(query), side(hit.owner))
            if query.in_register is not Register.MISSING:
                missing, found_side = found_side, missing
            years = years_apart(missing.taken_at, found_side.taken_at, missing.age, found_side.age)
            pairs.append(PairFields(hit.score, hit.rank, missing, found_side, years))
    return pairs

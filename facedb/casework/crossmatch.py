"""Cross-matching the missing register against the found one.

Every face of a person in a register is searched against the faces of the other register;
up to ``candidates_per_face`` persons scoring at least ``candidate_threshold`` become
candidate pairs for people to review. A pair of persons is one row whatever the number of
their faces: a later, better-scoring face pair raises it; a decided pair is never touched.
Scores are exact float32 cosines, whichever path found them. Each pair carries the checks
of ``checks.py`` (an impossible age keeps it out of the queue) and its evidence, worked out
again for every person whose pairs a run wrote (``settle``): on enrollment with the pairs, in
batch once the run has matched every face.

Two paths, one loop (``facedb.index.persons.top_persons``):

- On enrollment (``sweep``): the new faces against the live index. An enrollment commits its
  faces with ``crossmatched_at`` unset; matching runs after the commit and sets it in the
  same transaction as the pairs it writes. A process that dies between the two leaves the
  faces unset, and the next sweep (after any enrollment, and every few seconds in each
  service) matches them. Matching never fails an enrollment.
- In batch (``run_batch``, `facedb crossmatch`): every face of both registers is searched
  against the other's, blocks at a time, as matrix products over vectors read once
  (``batch.py``). Each block's pairs, the faces' marks and the run's progress commit
  together, so a crash resumes after the last block written.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray

from facedb.ages import age_at_photo, years_apart
from facedb.casework import batch
from facedb.casework.checks import check_pair
from facedb.config import Settings
from facedb.domain import AuditAction, Register
from facedb.errors import FaceDBError
from facedb.index.face_index import FaceIndex
from facedb.index.persons import PersonHit
from facedb.records import RegisterFace
from facedb.store.models import PairSideColumns
from facedb.store.pair_writes import PairFields, check_columns
from facedb.store.unit import Store
from facedb.trail.audit import AuditService
from facedb.trail.jobs import Job
from facedb.trail.notices import Notices

log = logging.getLogger(__name__)
QUERY_BATCH = 1024  # faces a sweep matches per round
# A pair is raised only by a score this much better than the one it records: the two paths
# compute one cosine with different summation orders (a few units in the 7th decimal).
RAISE_BY = 1e-4


@dataclass(frozen=True)
class CrossMatcher:
    """Finds, for faces of one register, candidate persons in the other, and keeps the
    pairs: on enrollment (``sweep``) and for whole registers (``run_batch``)."""

    settings: Settings
    store: Store
    index: FaceIndex
    audit: AuditService
    notices: Notices

    def match(self, faces: list[RegisterFace], vectors: NDArray[np.float32]) -> list[PairFields]:
        """Return each face's candidate pairs from the live index, ranked from 1."""
        if not faces:
            return []
        found = self.index.top_persons(
            vectors,
            self.settings.candidates_per_face,
            self._describe,
            admit=lambda row, other: other.in_register is not faces[row].in_register,
            floor=self.index.candidate_threshold,
        )
        return _pairs(faces, range(len(faces)), found)

    def _describe(self, face_ids: Sequence[int]) -> dict[int, RegisterFace]:
        with self.store.unit() as unit:
            return unit.registers.describe(face_ids)

    def record(
        self,
        pairs: list[PairFields],
        matched: list[RegisterFace],
        after: tuple[Register, int] | None = None,
    ) -> int:
        """Write the pairs (inserted, or raised when a face pair scores better) and mark the
        faces matched, in one transaction (with the batch run's progress, ``after``);
        return the pairs written. A decided or superseded pair is never touched.

        On enrollment (no ``after``) the evidence of the persons written is settled, and
        their new pending pairs announced (``notices``), in the same transaction; the batch
        run does both for every pair once, at its end.
        """
        best: dict[tuple[str, str], PairFields] = {}
        for pair in pairs:
            if pair.key not in best or pair.score > best[pair.key].score:
                best[pair.key] = pair
        now = datetime.now(UTC)
        with self.store.unit() as unit:
            # A person erased since their faces were read makes no pair.
            alive = unit.persons.existing(sorted({p for key in best for p in key}))
            kept = [pair for key, pair in best.items() if key[0] in alive and key[1] in alive]
            written = unit.pairs.upsert(kept, now, RAISE_BY)
            unit.registers.mark_matched([f.face_id for f in matched], now)
            if after is None:
                persons = sorted({p for pair in kept for p in pair.key})
                unit.pairs.settle(persons, self.index.candidate_threshold)
                self.notices.pending(unit, persons)
            else:
                unit.runs.advance(*after)
        return written

    def recheck(self, person_id: str) -> None:
        """Work out a person's undecided pairs again after their birth, gender or a photo's
        date changed: each side's date and age, the years between, the age check and the
        gender flag, and so whether each is pending or impossible (a pair that turns
        pending is announced)."""
        with self.store.unit() as unit:
            open_pairs = unit.pairs.open_involving(person_id)
            faces = unit.registers.describe(sorted({f for _, m, g in open_pairs for f in (m, g)}))
            rows = []
            for pair_id, missing_face, found_face in open_pairs:
                if missing_face in faces and found_face in faces:
                    missing, found = faces[missing_face], faces[found_face]
                    m, f = pair_side(missing), pair_side(found)
                    rows.append({
                        "pair_id": pair_id, **m.columns("missing"), **f.columns("found"),
                        "years_between": years_apart(m.taken_at, f.taken_at, m.age, f.age),
                        **check_columns(check_pair(missing, found)),
                    })  # fmt: skip
            unit.pairs.rewrite(rows)
            self.notices.pending(unit, [person_id])

    def sweep(self, stop: threading.Event | None = None) -> int:
        """Cross-match every face waiting for it (until ``stop`` is set: checked between
        rounds of QUERY_BATCH faces); return how many faces were matched.

        Never raises: a failure is logged and the faces wait for the next sweep.
        """
        done = 0
        try:
            while stop is None or not stop.is_set():
                with self.store.unit() as unit:
                    faces, vectors = unit.registers.waiting(
                        self.index.generation, self.index.dimension, QUERY_BATCH
                    )
                if not faces:
                    return done
                self.index.catch_up()
                self.record(self.match(faces, vectors), faces)
                done += len(faces)
            return done
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
        """Match every face of both registers against the other, resuming a crashed run
        (audited with its counts).

        Idempotent: a second run on unchanged registers writes nothing. Progress is committed
        with each block of query faces, so a crash resumes after the last block written.
        """
        with self.audit.audited(AuditAction.CROSSMATCH, job.caller) as trail:
            self._run_batch(job, progress)
            trail.results = [{"job_id": job.id, **job.counts}]

    def _run_batch(self, job: Job, progress: Callable[[int], None] | None) -> None:
        self.index.catch_up()
        with self.store.unit() as unit:
            phase, after = unit.runs.start()
            job.total = unit.registers.count()
        numbers: dict[str, int] = {}
        matrices = {r: self._matrix(r, numbers) for r in Register}
        k, floor = self.settings.candidates_per_face, self.index.candidate_threshold
        job.counts.update({"faces": 0, "pairs_written": 0})
        missing, found = matrices[Register.MISSING], matrices[Register.FOUND]
        sent: NDArray[np.int64] | None = None  # the missing faces' persons, when run here
        for register in (Register.MISSING, Register.FOUND):
            if register is Register.MISSING and phase is Register.FOUND:
                continue  # resumed after the missing register was done
            mine, other = matrices[register], matrices[register.other]
            start = mine.start_after(after if register is phase else 0)
            if register is Register.MISSING and start == 0:
                sent = np.full((len(mine.faces), k), -1, dtype=np.int64)
            for begin in range(start, len(mine.faces), batch.BATCH_QUERIES):
                block = slice(begin, min(begin + batch.BATCH_QUERIES, len(mine.faces)))
                hits = batch.block_hits(mine, other, block, k, floor)
                if register is Register.MISSING and sent is not None:
                    batch.note_sent(sent, hits, other.persons)
                elif register is Register.FOUND and sent is not None:
                    hits = hits.without(batch.already_sent(hits, mine.persons, sent, 0))
                pairs = batch.pair_fields(missing, found, hits, register is Register.MISSING)
                matched = mine.faces[block]
                written = self.record(pairs, matched, (register, matched[-1].face_id))
                job.counts["pairs_written"] += written
                job.counts["faces"] += len(matched)
                job.advance(len(matched))
                if progress:
                    progress(len(matched))
        with self.store.unit() as unit:  # every pair's evidence, in one set-based pass
            unit.pairs.settle(None, floor)
            self.notices.pending(unit, None)  # the run's new pairs, and any a crash left
            unit.runs.finish()

    def _matrix(self, register: Register, numbers: dict[str, int]) -> batch.RegisterMatrix:
        """Read one register's faces and vectors for the run."""
        with self.store.unit() as unit:
            _, faces, vectors = unit.registers.vectors(
                register, self.index.generation, self.index.dimension
            )
        return batch.RegisterMatrix.of(register, faces, vectors, numbers,
                                       self.settings.index_device)  # fmt: skip


def _pairs(
    faces: list[RegisterFace], rows: Sequence[int], found: list[list[PersonHit[RegisterFace]]]
) -> list[PairFields]:
    """Return the pairs of query faces ``faces[rows]`` and the persons found for each."""
    sides: dict[int, PairSideColumns] = {}  # each face's side, worked out once

    def side(face: RegisterFace) -> PairSideColumns:
        if face.face_id not in sides:
            sides[face.face_id] = pair_side(face)
        return sides[face.face_id]

    pairs = []
    for row, hits in zip(rows, found, strict=True):
        query = faces[row]
        for hit in hits:
            missing, found_face = query, hit.owner
            if query.in_register is not Register.MISSING:
                missing, found_face = found_face, missing
            m, f = side(missing), side(found_face)
            years = years_apart(m.taken_at, f.taken_at, m.age, f.age)
            pairs.append(PairFields(hit.score, m, f, years, check_pair(missing, found_face)))
    return pairs


def pair_side(face: RegisterFace) -> PairSideColumns:
    """Return what a pair records of one face: its person, photo, date and age there."""
    age, source = age_at_photo(face.declared_age, face.estimated_age)
    return PairSideColumns(face.person_id, face.face_id, face.photo_id, face.taken_at, age,
                           source)  # fmt: skip

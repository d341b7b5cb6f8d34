"""Cross-matching the missing register against the found one.

Every face of a person in a register is searched against the faces of the other register;
up to ``candidates_per_face`` persons scoring at least ``candidate_threshold`` become
candidate pairs for people to review. A pair of persons is one row whatever the number of
their faces: a later, better-scoring face pair raises it; a decided pair is never touched.

Durability: an enrollment commits its faces with ``crossmatched_at`` unset; matching runs
after the commit and sets it in the same transaction as the pairs it writes. A process that
dies between the two leaves the faces unset, and the next sweep (after any enrollment, and
every few seconds in each service) matches them. Matching never fails an enrollment.
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
from facedb.domain import MatchState, Register
from facedb.errors import FaceDBError
from facedb.index.face_index import FaceIndex, PersonHit
from facedb.records import RegisterFace
from facedb.services.jobs import Job
from facedb.store.pairs import PairFields, PairSideColumns
from facedb.store.unit import Store

log = logging.getLogger(__name__)
QUERY_BATCH = 1024  # query vectors per index call
# Faces of the other register whose person and register a batch run remembers between
# calls (about 200 bytes each): beyond this many the memory is dropped and re-read.
KNOWN_CAP = 500_000


@dataclass(frozen=True)
class CrossMatcher:
    """Finds, for faces of one register, candidate persons in the other, and keeps the
    pairs: on enrollment (``sweep``) and for whole registers (``run_batch``)."""

    settings: Settings
    store: Store
    index: FaceIndex

    def match(
        self,
        faces: list[RegisterFace],
        vectors: NDArray[np.float32],
        known: dict[int, RegisterFace | None] | None = None,
    ) -> list[PairFields]:
        """Return each face's candidate pairs: up to ``candidates_per_face`` persons of the
        other register scoring at least ``candidate_threshold``, ranked from 1.

        ``known`` caches what the index's faces are (their person and register) across
        calls; the scores come from the index (a half-precision index: within about 0.001).
        """
        if not faces:
            return []
        known = {} if known is None else known
        if len(known) > KNOWN_CAP:
            known.clear()

        def lookup(face_ids: Sequence[int]) -> dict[int, RegisterFace]:
            unknown = [i for i in face_ids if i not in known]
            if unknown:
                with self.store.unit() as unit:
                    info = unit.registers.describe(unknown)
                known.update({i: info.get(i) for i in unknown})
            return {i: f for i in face_ids if (f := known.get(i)) is not None}

        found = self.index.top_persons(
            vectors,
            self.settings.candidates_per_face,
            lookup,
            admit=lambda row, other: other.in_register is not faces[row].in_register,
            floor=self.settings.candidate_threshold,
            exact=False,
        )
        return [_pair(faces[row], hit) for row, hits in enumerate(found) for hit in hits]

    def record(self, pairs: list[PairFields], matched: list[RegisterFace]) -> int:
        """Write the pairs (inserted, or raised when a face pair scores better) and mark the
        faces matched, in one transaction; return the pairs written. A decided pair is
        never touched."""
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
                if row.state == MatchState.PENDING and best[key].score > row.score
            ]
            unit.pairs.insert(new, now)
            for pair_id, pair in raised:
                unit.pairs.raise_(pair_id, pair, now)
            unit.registers.mark_matched([f.face_id for f in matched], now)
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
        with each batch of query faces, so a crash resumes after the last batch written.
        """
        self.index.catch_up()
        with self.store.unit() as unit:
            after = unit.pairs.run_start()
            job.total = unit.registers.count()
        job.counts.update({"faces": 0, "pairs_written": 0})
        known: dict[int, RegisterFace | None] = {}
        while True:
            with self.store.unit() as unit:
                faces, vectors = unit.registers.after(
                    self.index.generation, self.index.dimension, after, QUERY_BATCH
                )
            if not faces:
                break
            job.counts["pairs_written"] += self.record(self.match(faces, vectors, known), faces)
            after = faces[-1].face_id
            with self.store.unit() as unit:
                unit.pairs.run_advance(after)
            job.counts["faces"] += len(faces)
            job.advance(len(faces))
            if progress:
                progress(len(faces))
        with self.store.unit() as unit:
            unit.pairs.run_finish()


def _pair(query: RegisterFace, hit: PersonHit[RegisterFace]) -> PairFields:
    """Return what a pair records of a face and a person found for it."""
    missing, found = (
        (query, hit.owner) if query.in_register is Register.MISSING else (hit.owner, query)
    )
    missing_age, missing_source = age_at_photo(missing.declared_age, missing.estimated_age)
    found_age, found_source = age_at_photo(found.declared_age, found.estimated_age)
    return PairFields(
        score=hit.score,
        rank=hit.rank,
        missing=PairSideColumns(
            missing.person_id,
            missing.face_id,
            missing.photo_id,
            missing.taken_at,
            missing_age,
            missing_source,
        ),
        found=PairSideColumns(
            found.person_id, found.face_id, found.photo_id, found.taken_at, found_age, found_source
        ),
        years_between=years_apart(missing.taken_at, found.taken_at, missing_age, found_age),
    )

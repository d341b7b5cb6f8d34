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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.exc import IntegrityError

from facedb.domain import MatchState, Register
from facedb.errors import FaceDBError
from facedb.service.ages import age_at_photo, years_apart
from facedb.service.context import FaceDB
from facedb.service.jobs import Job
from facedb.store import candidates as store
from facedb.store.candidates import RegisterFace
from facedb.store.db import transaction

log = logging.getLogger(__name__)
QUERY_BATCH = 1024  # query vectors per index call
# Faces of the other register whose person and register a batch run remembers between
# calls (about 200 bytes each): beyond this many the memory is dropped and re-read.
KNOWN_CAP = 500_000


@dataclass(frozen=True)
class Hit:
    """One face of one register found for a face of the other."""

    query: RegisterFace
    other: RegisterFace
    score: float
    rank: int  # the other person's place among the query face's candidates, from 1

    def pair(self) -> tuple[RegisterFace, RegisterFace]:
        """Return (missing side, found side)."""
        if self.query.register is Register.MISSING:
            return self.query, self.other
        return self.other, self.query


def match(
    db: FaceDB,
    faces: list[RegisterFace],
    vectors: NDArray[np.float32],
    known: dict[int, RegisterFace | None] | None = None,
) -> list[Hit]:
    """Return each face's candidates in the other register, with one index call per round.

    A round asks the index for ``fetch`` neighbours of every query still open; a query closes
    once it has its persons, met a score under the floor, or exhausted the index. ``known``
    caches what the neighbours are (their person and register) across calls.
    """
    settings = db.settings
    want, floor = settings.candidates_per_face, settings.candidate_threshold
    total = db.index.count
    if not faces or total == 0:
        return []
    fetch = min(total, max(8 * want, 64))
    open_rows = list(range(len(faces)))
    hits: list[Hit] = []
    known = {} if known is None else known
    if len(known) > KNOWN_CAP:
        known.clear()
    while open_rows:
        scores, ids = db.index.search(vectors[open_rows], fetch)
        unknown = {int(i) for i in ids.ravel() if i >= 0 and int(i) not in known}
        if unknown:
            with transaction(db.sessions) as session:
                info = store.register_face_info(session, sorted(unknown))
            known.update({i: info.get(i) for i in unknown})
        still_open = []
        for row, face_scores, face_ids in zip(open_rows, scores, ids, strict=True):
            query = faces[row]
            found: dict[str, Hit] = {}
            closed = fetch >= total
            for score, face_id in zip(face_scores, face_ids, strict=True):
                if face_id < 0 or score < floor:
                    closed = True
                    break
                other = known.get(int(face_id))
                if other is None or other.register is query.register or other.person_id in found:
                    continue
                found[other.person_id] = Hit(query, other, float(score), len(found) + 1)
                if len(found) == want:
                    closed = True
                    break
            if closed:
                hits.extend(found.values())
            else:
                still_open.append(row)
        open_rows = still_open
        fetch = min(total, fetch * 4)
    return hits


def record(db: FaceDB, hits: list[Hit], matched: list[RegisterFace]) -> int:
    """Write the pairs (inserted or raised) and mark the faces matched; return rows touched."""
    best: dict[tuple[str, str], Hit] = {}
    for hit in hits:
        missing, found = hit.pair()
        key = (missing.person_id, found.person_id)
        if key not in best or hit.score > best[key].score:
            best[key] = hit
    now = datetime.now(UTC)
    touched = 0
    with transaction(db.sessions) as session:
        existing = store.candidates_for_pairs(session, list(best))
        new_rows = []
        for key, hit in best.items():
            row = existing.get(key)
            if row is None:
                new_rows.append(
                    _fields(hit, now) | {"state": MatchState.PENDING.value, "created_at": now}
                )
            elif row.state == MatchState.PENDING and hit.score > row.score:
                for name, value in _fields(hit, now).items():
                    setattr(row, name, value)
            else:
                continue
            touched += 1
        store.insert_candidates(session, new_rows)
        store.mark_crossmatched(session, [f.face_id for f in matched], now)
    return touched


def _fields(hit: Hit, now: datetime) -> dict[str, object]:
    """Return what a pair row records of a hit (both sides, their ages, the gap)."""
    missing, found = hit.pair()
    missing_age, missing_source = age_at_photo(missing.declared_age, missing.estimated_age)
    found_age, found_source = age_at_photo(found.declared_age, found.estimated_age)
    return {
        "score": round(hit.score, 5),
        "rank": hit.rank,
        "missing_person_id": missing.person_id,
        "found_person_id": found.person_id,
        "missing_face_id": missing.face_id,
        "found_face_id": found.face_id,
        "missing_photo_id": missing.photo_id,
        "found_photo_id": found.photo_id,
        "missing_taken_at": missing.taken_at,
        "found_taken_at": found.taken_at,
        "missing_age": missing_age,
        "found_age": found_age,
        "missing_age_source": missing_source.value if missing_source else None,
        "found_age_source": found_source.value if found_source else None,
        "years_between": years_apart(missing.taken_at, found.taken_at, missing_age, found_age),
        "raised_at": now,
        "statuses_before": {},
    }


def sweep(db: FaceDB) -> int:
    """Cross-match every face waiting for it; return how many faces were matched.

    Never raises: a failure is logged and the faces wait for the next sweep.
    """
    done = 0
    try:
        while True:
            with transaction(db.sessions) as session:
                faces, vectors = store.faces_to_crossmatch(
                    session, db.index.generation, db.index.dimension, QUERY_BATCH
                )
            if not faces:
                return done
            db.index.catch_up()
            record(db, match(db, faces, vectors), faces)
            done += len(faces)
    except IntegrityError:  # another process wrote the same new pair first; next sweep
        log.info("cross-match sweep met a concurrent writer; it resumes on the next sweep")
    except FaceDBError as exc:
        log.warning("cross-match sweep stopped: %s", exc.message)
    except Exception:  # a bug here must not fail the enrollment that triggered the sweep
        log.exception("cross-match sweep failed")
    return done


def pending(db: FaceDB) -> int:
    """Return how many faces wait to be cross-matched (the lag)."""
    with transaction(db.sessions) as session:
        return store.pending_count(session)


def run_batch(db: FaceDB, job: Job, progress: Callable[[int], None] | None = None) -> None:
    """Match every face of both registers against the other, resuming a crashed run.

    Idempotent: pairs are upserted, so a second run adds nothing. Progress is committed
    with each batch of query faces, so a crash resumes after the last batch written.
    """
    db.index.catch_up()
    with transaction(db.sessions) as session:
        run = store.crossmatch_run(session)
        if run.finished_at is not None:
            run.after_face_id, run.finished_at = 0, None
            run.started_at = datetime.now(UTC)
        after = int(run.after_face_id)
    job.counts.update({"faces": 0, "pairs_written": 0})
    with transaction(db.sessions) as session:
        job.total = store.register_face_count(session)
    known: dict[int, RegisterFace | None] = {}
    while True:
        with transaction(db.sessions) as session:
            faces, vectors = store.register_faces_after(
                session, db.index.generation, db.index.dimension, after, QUERY_BATCH
            )
        if not faces:
            break
        job.counts["pairs_written"] += record(db, match(db, faces, vectors, known), faces)
        after = faces[-1].face_id
        with transaction(db.sessions) as session:
            store.crossmatch_run(session).after_face_id = after
        job.counts["faces"] += len(faces)
        job.advance(len(faces))
        if progress:
            progress(len(faces))
    with transaction(db.sessions) as session:
        store.crossmatch_run(session).finished_at = datetime.now(UTC)

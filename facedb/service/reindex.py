"""The re-index job: rebuild the index from stored embeddings, or re-embed every face.

A re-embed writes the next generation's embeddings beside the current ones, then switches
the active generation in one transaction; searches keep using the old index until the new
one is built. A crash mid-job leaves the old generation active and serving; the next job
deletes the orphaned rows and starts over.
"""

from __future__ import annotations

import logging

from facedb.domain import ChangeOp
from facedb.errors import ImageError
from facedb.pipeline.recipes import CURRENT
from facedb.pipeline.types import Box, Detection
from facedb.service.context import FaceDB
from facedb.service.jobs import Job
from facedb.store import repository as repo
from facedb.store.db import transaction
from facedb.store.models import Change, Embedding, Face

log = logging.getLogger(__name__)
BATCH = 32


def reindex(db: FaceDB, job: Job, re_embed: bool = False) -> None:
    """Run the job in this thread, updating ``job`` as it goes."""
    with transaction(db.sessions) as session:
        job.total = repo.count_faces(session)
    if re_embed:
        _re_embed(db, job)
        job.done = 0
    db.index.rebuild(progress=job.advance)
    job.counts["indexed"] = db.index.count


def _re_embed(db: FaceDB, job: Job) -> None:
    """Embed every face with the current recipe into a new generation, then switch to it."""
    with transaction(db.sessions) as session:
        current = repo.index_state(session, db.analyzer.model_name, db.analyzer.model_version)
        target = current.generation + 1
        repo.drop_generations(session, current.generation, above=True)
    job.counts.update({"embedded": 0, "failed": 0})
    failed: set[int] = set()
    while True:
        with transaction(db.sessions) as session:
            pending = [
                f
                for f in repo.faces_missing_generation(session, target, BATCH + len(failed))
                if f.id not in failed
            ][:BATCH]
        if pending:
            failed |= _embed_batch(db, job, pending, target)
            continue
        if _switch(db, target, failed):
            break
    with transaction(db.sessions) as session:
        repo.drop_generations(session, target, above=False)
    log.info("re-embed switched to generation %d", target)


def _embed_batch(db: FaceDB, job: Job, faces: list[Face], generation: int) -> set[int]:
    """Embed faces from their stored photos; return the ids that could not be embedded.

    The pipeline's own decode and alignment run on each stored photo, with the stored
    detections, so a re-embed sees exactly what an enrollment would.
    """
    by_photo: dict[str, list[Face]] = {}
    for face in faces:
        by_photo.setdefault(face.photo_id, []).append(face)
    failed: set[int] = set()
    rows: list[Embedding] = []
    for photo_id, photo_faces in by_photo.items():
        with transaction(db.sessions) as session:
            content = repo.get_photo(session, photo_id).content
        try:
            vectors = db.analyzer.embed_stored(
                content, [_detection(f) for f in photo_faces], CURRENT
            )
        except ImageError as exc:
            failed.update(f.id for f in photo_faces)
            job.errors.append(f"photo {photo_id}: {exc.message}")
            continue
        rows.extend(
            Embedding(
                face_id=face.id,
                generation=generation,
                model_name=db.analyzer.model_name,
                model_version=CURRENT.version,
                vector=repo.encode_vector(vector),
            )
            for face, vector in zip(photo_faces, vectors, strict=True)
        )
    with transaction(db.sessions) as session:
        session.add_all(rows)
    job.advance(len(faces))
    job.counts["embedded"] += len(rows)
    job.counts["failed"] = len(failed)
    return failed


def _switch(db: FaceDB, target: int, failed: set[int]) -> bool:
    """Make ``target`` the active generation unless a face still lacks an embedding.

    The update comes first so it takes the write lock before the final check: an
    enrollment committing meanwhile is either seen by the check or waits for the switch.
    """
    with transaction(db.sessions) as session:
        repo.switch_generation(session, target, db.analyzer.model_name, CURRENT.version)
        missing = [
            f
            for f in repo.faces_missing_generation(session, target, len(failed) + 1)
            if f.id not in failed
        ]
        if missing:
            session.rollback()
            return False
        session.add(Change(op=ChangeOp.GENERATION, face_id=None))
    return True


def _detection(face: Face) -> Detection:
    landmarks = face.landmarks or {}
    left, right = landmarks.get("left_eye"), landmarks.get("right_eye")
    return Detection(
        box=Box(face.box_x, face.box_y, face.box_w, face.box_h),
        confidence=face.confidence,
        left_eye=tuple(left) if left else None,
        right_eye=tuple(right) if right else None,
    )

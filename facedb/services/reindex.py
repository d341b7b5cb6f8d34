"""The re-index job: rebuild the index from stored embeddings, or re-embed every face.

A re-embed writes the next generation's embeddings beside the current ones, then switches
the active generation in one transaction; searches keep using the old index until the new
one is built. A crash mid-job leaves the old generation active and serving; the next job
deletes the orphaned rows and starts over.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from facedb.domain import AuditAction, ChangeOp
from facedb.errors import ImageError
from facedb.index.face_index import FaceIndex
from facedb.pipeline.base import Analyzer
from facedb.pipeline.types import Detection
from facedb.records import FaceRecord
from facedb.services.audit import AuditService
from facedb.services.jobs import Job
from facedb.store.embeddings import Embedded
from facedb.store.unit import Store

log = logging.getLogger(__name__)
BATCH = 32


@dataclass(frozen=True)
class ReindexService:
    store: Store
    index: FaceIndex
    analyzer: Analyzer
    audit: AuditService

    def run(self, job: Job, re_embed: bool = False) -> None:
        """Run the job in this thread, updating ``job`` as it goes (audited with its counts)."""
        with self.audit.audited(AuditAction.REINDEX, job.caller) as trail:
            with self.store.unit() as unit:
                job.total = unit.photos.count_faces()
            if re_embed:
                self._re_embed(job)
                job.done = 0
            self.index.rebuild(progress=job.advance)
            job.counts["indexed"] = self.index.count
            trail.results = [{"job_id": job.id, "re_embed": re_embed, **job.counts}]

    def _re_embed(self, job: Job) -> None:
        """Embed every face with the chosen recipe (FACEDB_RECIPE) into a new generation,
        then switch."""
        with self.store.unit() as unit:
            current = unit.generations.active(self.analyzer.model_name, self.index.target)
            target = current.generation + 1
            unit.embeddings.drop_generations(current.generation, above=True)
        job.counts.update({"embedded": 0, "failed": 0})
        failed: set[int] = set()
        while True:
            with self.store.unit() as unit:
                waiting = unit.embeddings.faces_without(target, BATCH + len(failed))
            pending = [f for f in waiting if f.id not in failed][:BATCH]
            if pending:
                failed |= self._embed_batch(job, pending, target)
                continue
            if self._switch(target, failed):
                break
        with self.store.unit() as unit:
            unit.embeddings.drop_generations(target, above=False)
        log.info("re-embed switched to generation %d", target)

    def _embed_batch(self, job: Job, faces: list[FaceRecord], generation: int) -> set[int]:
        """Embed faces from their stored photos; return the ids that could not be embedded.

        The pipeline's own decode and alignment run on each stored photo, with the stored
        detections, so a re-embed sees exactly what an enrollment would.
        """
        by_photo: dict[str, list[FaceRecord]] = {}
        for face in faces:
            by_photo.setdefault(face.photo_id, []).append(face)
        failed: set[int] = set()
        embedded = Embedded(generation, self.analyzer.model_name, self.index.target)
        done = 0
        for photo_id, photo_faces in by_photo.items():
            with self.store.unit() as unit:
                content, _ = unit.photos.content(photo_id)
            try:
                vectors = self.analyzer.embed_stored(content, [_detection(f) for f in photo_faces])
            except ImageError as exc:
                failed.update(f.id for f in photo_faces)
                job.errors.append(f"photo {photo_id}: {exc.message}")
                continue
            with self.store.unit() as unit:
                unit.embeddings.add([f.id for f in photo_faces], vectors, embedded)
            done += len(photo_faces)
        job.advance(len(faces))
        job.counts["embedded"] += done
        job.counts["failed"] = len(failed)
        return failed

    def _switch(self, target: int, failed: set[int]) -> bool:
        """Make ``target`` the active generation unless a face still lacks an embedding.

        The update comes first so it takes the write lock before the final check: an
        enrollment committing meanwhile is either seen by the check or waits for the switch.
        """
        with self.store.unit() as unit:
            unit.generations.switch(target, self.analyzer.model_name, self.index.target)
            missing = [
                f
                for f in unit.embeddings.faces_without(target, len(failed) + 1)
                if f.id not in failed
            ]
            if missing:
                unit.rollback()
                return False
            unit.changes.log(ChangeOp.GENERATION, [None])
        return True


def _detection(face: FaceRecord) -> Detection:
    landmarks = face.landmarks or {}
    left, right = landmarks.get("left_eye"), landmarks.get("right_eye")
    return Detection(
        box=face.box,
        confidence=face.confidence,
        left_eye=tuple(left) if left else None,
        right_eye=tuple(right) if right else None,
    )

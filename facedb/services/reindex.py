"""The re-index job: rebuild the index from stored embeddings, re-embed every face, or
remove the age axis learned from them (``facedb/pipeline/age_axis.py``).

A re-embed (or an age axis removed) writes the next generation's embeddings beside the
current ones, then switches the active generation in one transaction; searches keep using
the old index until the new one is built. A crash mid-job leaves the old generation active
and serving; the next job deletes the orphaned rows and starts over.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from facedb.domain import AuditAction, ChangeOp
from facedb.errors import AgeAxisRefused, ImageError
from facedb.index.face_index import FaceIndex
from facedb.pipeline.age_axis import AxisGuard, AxisLearner
from facedb.pipeline.base import Analyzer
from facedb.pipeline.recipes import Recipe
from facedb.pipeline.types import Detection
from facedb.pipeline.vectors import Vectors
from facedb.records import AgeAxis, FaceRecord
from facedb.store.embeddings import Embedded
from facedb.store.unit import Store
from facedb.trail.audit import AuditService
from facedb.trail.jobs import Job

log = logging.getLogger(__name__)
BATCH = 32
# One batch of a move: write these faces' embeddings into the generation, return the ids failed.
Step = Callable[[list[FaceRecord], int], set[int]]


@dataclass(frozen=True)
class ReindexService:
    store: Store
    index: FaceIndex
    analyzer: Analyzer
    audit: AuditService

    def run(
        self,
        job: Job,
        re_embed: bool = False,
        remove_age_axis: bool = False,
        guard: AxisGuard | None = None,
        fallback: AgeAxis | None = None,
    ) -> None:
        """Run the job in this thread, updating ``job`` as it goes (audited with its counts).

        ``re_embed``: embed every face again with the chosen recipe. ``remove_age_axis``
        (after the re-embed, if both): learn the age axis of the faces held and move the
        database to embeddings without it; refused (AgeAxisRefused, nothing changed by this
        step) unless ``guard`` (by default ``AxisGuard()``) keeps what was learned, or
        ``fallback`` is given: then that axis (the one served before a re-embed) is removed.
        """
        with self.audit.audited(AuditAction.REINDEX, job.caller) as trail:
            with self.store.unit() as unit:
                job.total = unit.photos.count_faces()
            result: dict[str, object] = {"job_id": job.id, "re_embed": re_embed}
            if re_embed:
                self._re_embed(job)
                job.done = 0
            if remove_age_axis:
                axis = self._remove_age_axis(job, guard or AxisGuard(), fallback)
                result["age_axis"] = {
                    "model_version": axis.version,
                    "faces": axis.faces,
                    "aged_faces": axis.aged_faces,
                    "children": axis.children,
                    "adults": axis.adults,
                    "age_correlations": list(axis.age_correlations),
                    "parts_changed": [bool(d.any()) for d in axis.directions],
                }
                job.done = 0
            self.index.rebuild(progress=job.advance)
            job.counts["indexed"] = self.index.count
            trail.results = [{**result, **job.counts}]

    def _re_embed(self, job: Job) -> None:
        """Embed every face with the chosen recipe (FACEDB_RECIPE) into a new generation,
        then switch. Where the stored embeddings hold every part of the chosen recipe (it
        weighs the same networks otherwise, or leaves one out), they are worked out from
        them: no photo is read, and the networks need not be loaded."""
        with self.store.unit() as unit:
            current = unit.generations.active(self.analyzer.model_name, self.index.target)
        stored = self.analyzer.recipes.of(current.model_version)
        target = self.analyzer.recipes.of(self.index.target)
        if target.version != stored.version and target.parts_in(stored) is not None:
            job.counts.update({"derived": 0, "failed": 0})
            step = self._deriving(job, current.generation, stored, target.version,
                                  lambda v: target.from_parts(v, stored))  # fmt: skip
            self._move(step, target.version)
            return
        job.counts.update({"embedded": 0, "failed": 0})
        self._move(lambda faces, target: self._embed_batch(job, faces, target),
                   self.index.target)  # fmt: skip

    def _deriving(self, job: Job, source: int, base: Recipe, version: str,
                  make: Callable[[Vectors], Vectors]) -> Step:  # fmt: skip
        """A batch step writing each face's embedding of ``version`` as ``make`` works it out
        from its embedding in generation ``source`` (made by ``base``)."""

        def derive(faces: list[FaceRecord], target: int) -> set[int]:
            with self.store.unit() as unit:
                ids, vectors = unit.embeddings.of_faces(source, [f.id for f in faces],
                                                        base.dimension)  # fmt: skip
                if len(ids):
                    embedded = Embedded(target, self.analyzer.model_name, version)
                    unit.embeddings.add(ids.tolist(), make(vectors), embedded)
            job.advance(len(faces))
            job.counts["derived"] += len(ids)
            failed = {f.id for f in faces} - {int(i) for i in ids}
            job.counts["failed"] += len(failed)
            return failed

        return derive

    def _remove_age_axis(self, job: Job, guard: AxisGuard, fallback: AgeAxis | None) -> AgeAxis:
        """Learn the served embeddings' age axis (one pass over them), check it, then write
        each face's embedding without it as a new generation and switch."""
        with self.store.unit() as unit:
            current = unit.generations.active(self.analyzer.model_name, self.index.target)
        base = self.analyzer.recipes.of(current.model_version)
        if base.axis is not None:
            raise AgeAxisRefused(
                "an age axis is removed from this database's embeddings already (learned from "
                f"{base.axis.faces} faces); to learn it again from the faces held now, run "
                "`facedb reindex --re-embed --remove-age-axis`. Nothing was changed"
            )
        try:
            axis = guard.keep(self._learn(current.generation, base))
        except AgeAxisRefused as exc:
            if fallback is None or fallback.base_version != base.version:
                raise
            log.warning("%s; the axis learned from %d faces stays", exc.message, fallback.faces)
            axis = fallback
        recipe = self.analyzer.recipes.add_axis(axis)
        with self.store.unit() as unit:
            unit.age_axes.keep(axis)
        log.info("age axis learned from %d faces, %d children and %d adults (|r| with age %s)",
                 axis.faces, axis.children, axis.adults, axis.age_correlations)  # fmt: skip
        job.counts.update({"derived": 0, "failed": 0})
        self._move(self._deriving(job, current.generation, base, recipe.version, recipe.derive),
                   recipe.version)  # fmt: skip
        return axis

    def _learn(self, generation: int, base: Recipe) -> AgeAxis:
        """Return the age axis of ``generation``'s embeddings (made by ``base``), each face
        with its age (declared, else estimated), read in one pass."""
        learner = AxisLearner(base)
        with self.store.unit() as unit:
            for ids, vectors in unit.embeddings.each(generation, base.dimension):
                ages = unit.photos.ages(ids.tolist())
                learner.add(vectors, np.array([ages.get(int(i), np.nan) for i in ids]))
        return learner.learned()

    def _move(self, make: Step, version: str) -> None:
        """Write every face's embedding of ``version`` into the next generation, batch by
        batch (``make`` returns the faces it could not do), then switch to it."""
        with self.store.unit() as unit:
            current = unit.generations.active(self.analyzer.model_name, self.index.target)
            target = current.generation + 1
            unit.embeddings.drop_generations(current.generation, above=True)
        failed: set[int] = set()
        while True:
            with self.store.unit() as unit:
                waiting = unit.embeddings.faces_without(target, BATCH + len(failed))
            pending = [f for f in waiting if f.id not in failed][:BATCH]
            if pending:
                failed |= make(pending, target)
                continue
            if self._switch(target, failed, version):
                break
        with self.store.unit() as unit:
            unit.embeddings.drop_generations(target, above=False)
        log.info("switched to generation %d (%s)", target, version)

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
                vectors = self.analyzer.embed_stored(
                    content, [Detection.stored(f) for f in photo_faces]
                )
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

    def _switch(self, target: int, failed: set[int], version: str) -> bool:
        """Make ``target`` the active generation unless a face still lacks an embedding.

        The update comes first so it takes the write lock before the final check: an
        enrollment committing meanwhile is either seen by the check or waits for the switch.
        """
        with self.store.unit() as unit:
            unit.generations.switch(target, self.analyzer.model_name, version)
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

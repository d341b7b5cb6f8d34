"""1:N search (ranked identities per face) and 1:1 verification, both audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.orm import Session

from facedb.domain import AgeSource, AuditAction, Gender, PersonStatus
from facedb.errors import InvalidInput, NoFaceFound
from facedb.pipeline.types import Face as DetectedFace
from facedb.service.ages import age_at_photo, age_on, years_apart, years_since
from facedb.service.audit import Caller, audited
from facedb.service.context import FaceDB
from facedb.service.records import FaceRecord, PersonRecord
from facedb.service.uploads import Upload
from facedb.store import repository as repo
from facedb.store.db import transaction


@dataclass(frozen=True)
class SearchFilters:
    """Which persons may be candidates.

    ``gender`` keeps persons of that declared gender and, unless ``include_unknown_gender``
    is false, persons whose gender is not recorded (a missing child's record often lacks
    it). Ages are the person's age today; a person without a birth date or year is kept
    out when an age bound is given.
    """

    gender: Gender | None = None
    include_unknown_gender: bool = True
    min_age: float | None = None
    max_age: float | None = None
    status: PersonStatus | None = None

    def check(self) -> None:
        """Raise InvalidInput when the filters contradict each other."""
        if self.min_age is not None and self.max_age is not None and self.min_age > self.max_age:
            raise InvalidInput(
                f"min_age {self.min_age} is above max_age {self.max_age}", field="min_age"
            )

    def admits(self, person: PersonRecord, today: date) -> bool:
        unknown_kept = person.gender is None and self.include_unknown_gender
        if self.gender and person.gender != self.gender and not unknown_kept:
            return False
        if self.status and person.status != self.status:
            return False
        if self.min_age is not None or self.max_age is not None:
            age = age_on(today, person.birth_date, person.birth_year)
            if age is None:
                return False
            if self.min_age is not None and age < self.min_age:
                return False
            if self.max_age is not None and age > self.max_age:
                return False
        return True


@dataclass(frozen=True)
class Candidate:
    """One identity for one probe face: the best-matching of that person's faces, with the
    date of that face's photo and the person's age at it (declared, else estimated)."""

    person: PersonRecord
    score: float
    match: bool
    face: FaceRecord
    taken_at: date | None = None
    age_at_photo: float | None = None
    age_source: AgeSource | None = None


@dataclass(frozen=True)
class FaceMatches:
    face: DetectedFace
    candidates: list[Candidate]


@dataclass(frozen=True)
class SearchResult:
    faces: list[FaceMatches]
    threshold: float
    probe_taken_at: date | None = None

    def years(self, candidate: Candidate, today: date) -> tuple[float | None, float | None]:
        """Return (years since the candidate's photo, years between it and the probe's)."""
        if self.probe_taken_at is None:
            return years_since(candidate.taken_at, today), None
        return None, years_apart(self.probe_taken_at, candidate.taken_at, None, None)


def search(
    db: FaceDB,
    caller: Caller,
    photo: Upload,
    k: int = 5,
    threshold: float | None = None,
    filters: SearchFilters | None = None,
) -> SearchResult:
    """Return every face in the photo with its ranked identities, best first (audited).

    ``photo.taken_at``, when known, is the probe's date: candidates then carry the years
    between the two photos instead of the years since theirs.
    """
    filters = filters or SearchFilters()
    with audited(db, AuditAction.SEARCH, caller) as trail:
        if not 1 <= k <= 100:
            raise InvalidInput("k must lie between 1 and 100", field="k")
        if photo.taken_at is not None and photo.taken_at > date.today():
            raise InvalidInput(f"taken_at {photo.taken_at} is in the future", field="taken_at")
        filters.check()
        faces = _analyze(db, photo.read(db.settings.max_image_bytes))
        if not faces:
            raise NoFaceFound("no face was found in the photo")
        db.index.catch_up()
        cut = db.settings.match_threshold if threshold is None else threshold
        matches = [FaceMatches(f, rank_identities(db, f.embedding, k, cut, filters)) for f in faces]
        trail.faces_found = len(matches)
        trail.results = [
            {
                "box": m.face.box.as_dict(),
                "candidates": [
                    {"person_id": c.person.id, "score": round(c.score, 5), "match": c.match}
                    for c in m.candidates
                ],
            }
            for m in matches
        ]
    return SearchResult(matches, cut, photo.taken_at)


def rank_identities(
    db: FaceDB, vector: NDArray[np.float32], k: int, threshold: float, filters: SearchFilters
) -> list[Candidate]:
    """Return up to k persons, each once with their best face, by cosine similarity.

    Faces are fetched from the index in widening rounds until k distinct persons pass the
    filters or the index is exhausted; the database decides which faces still exist. With a
    half-precision index the fetched faces are re-scored from their stored float32
    embeddings, so every score reported is exact.
    """
    total = db.index.count
    fetch = min(max(4 * k, 16), max(total, 1))
    best: dict[str, Candidate] = {}
    today = date.today()
    while True:
        scores, ids = db.index.search(vector[None, :], fetch)
        pairs = [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]
        with transaction(db.sessions) as session:
            if not db.index.index.exact_scores:
                pairs = _rescored(session, db, vector, pairs)
            rows = repo.faces_with_persons(session, [i for i, _ in pairs])
            found = {
                face_id: (FaceRecord.of(row.face), PersonRecord.of(row.person), row)
                for face_id, row in rows.items()
            }
        best = {}
        for face_id, score in pairs:
            if face_id not in found:
                continue
            face, person, row = found[face_id]
            if person.id in best or not filters.admits(person, today):
                continue
            age, source = age_at_photo(row.declared_age, face.age)
            best[person.id] = Candidate(
                person, score, score >= threshold, face, row.taken_at, age, source
            )
        if len(best) >= k or fetch >= total:
            break
        fetch = min(fetch * 4, total)
    return sorted(best.values(), key=lambda c: -c.score)[:k]


def _rescored(
    session: Session, db: FaceDB, vector: NDArray[np.float32], pairs: list[tuple[int, float]]
) -> list[tuple[int, float]]:
    """Return the pairs with float32 scores from the stored embeddings, best first."""
    ids, vectors = repo.embeddings_for(
        session, db.index.generation, [i for i, _ in pairs], db.index.dimension
    )
    exact = dict(zip(ids.tolist(), (vectors @ vector).tolist(), strict=True))
    return sorted(((i, exact.get(i, s)) for i, s in pairs), key=lambda p: -p[1])


@dataclass(frozen=True)
class Verification:
    match: bool
    score: float
    threshold: float
    face: DetectedFace
    best_face: FaceRecord | None


def verify(
    db: FaceDB, caller: Caller, photo: Upload, person_id: str, threshold: float | None = None
) -> Verification:
    """Compare the photo's largest face with every enrolled face of one person (audited)."""
    cut = db.settings.match_threshold if threshold is None else threshold
    with audited(db, AuditAction.VERIFY, caller) as trail:
        with transaction(db.sessions) as session:
            repo.get_person(session, person_id)
        faces = _analyze(db, photo.read(db.settings.max_image_bytes))
        if not faces:
            raise NoFaceFound("no face was found in the photo")
        probe = max(faces, key=lambda f: f.box.w * f.box.h)
        result = _compare(db, probe, person_id, cut)
        trail.faces_found = 1
        trail.results = [{"person_id": person_id, "score": result.score, "match": result.match}]
    return result


def _compare(db: FaceDB, probe: DetectedFace, person_id: str, cut: float) -> Verification:
    with transaction(db.sessions) as session:
        face_ids = repo.face_ids_of(session, person_id=person_id)
        ids, vectors = repo.embeddings_for(
            session, db.index.generation, face_ids, probe.embedding.shape[0]
        )
        if not len(ids):
            return Verification(False, -1.0, cut, probe, None)
        scores = vectors @ probe.embedding
        best = int(np.argmax(scores))
        best_face = FaceRecord.of(repo.get_face(session, int(ids[best])))
    score = float(scores[best])
    return Verification(score >= cut, score, cut, probe, best_face)


def _analyze(db: FaceDB, data: bytes) -> list[DetectedFace]:
    """Return the photo's faces embedded as the indexed faces were.

    A re-embed finishing during the call switches the recipe; the photo is then analysed
    again rather than compared across model versions.
    """
    faces = db.analyzer.analyze(data)
    if faces and faces[0].model_version != db.index.model_version:
        faces = db.analyzer.analyze(data)
    return faces

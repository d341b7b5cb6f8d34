"""1:N search (ranked identities per face) and 1:1 verification."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
from numpy.typing import NDArray

from facedb.errors import NoFaceFound
from facedb.pipeline.types import Face as DetectedFace
from facedb.service.ages import age_on
from facedb.service.context import FaceDB
from facedb.store import repository as repo
from facedb.store.db import transaction
from facedb.store.models import Face, Person


@dataclass(frozen=True)
class SearchFilters:
    """Person filters; ages are the person's age today, from the birth date."""

    gender: str | None = None
    min_age: float | None = None
    max_age: float | None = None
    status: str | None = None

    def admits(self, person: Person, today: date) -> bool:
        if self.gender and person.gender != self.gender:
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


@dataclass
class Candidate:
    """One identity for one probe face: the best-matching of that person's faces."""

    person: Person
    score: float
    match: bool
    face: Face


@dataclass
class FaceMatches:
    face: DetectedFace
    candidates: list[Candidate]


def search_photo(
    db: FaceDB, data: bytes, k: int, threshold: float | None, filters: SearchFilters
) -> list[FaceMatches]:
    """Return every face in the photo with its ranked identities, best first."""
    faces = db.analyzer.analyze(data)
    db.index.catch_up()
    cut = db.settings.match_threshold if threshold is None else threshold
    return [FaceMatches(f, rank_identities(db, f.embedding, k, cut, filters)) for f in faces]


def rank_identities(
    db: FaceDB, vector: NDArray[np.float32], k: int, threshold: float, filters: SearchFilters
) -> list[Candidate]:
    """Return up to k persons, each once with their best face, by cosine similarity.

    Faces are fetched from the index in widening rounds until k distinct persons pass the
    filters or the index is exhausted; the database decides which faces still exist.
    """
    total = db.index.count
    fetch = min(max(4 * k, 16), max(total, 1))
    best: dict[str, Candidate] = {}
    today = date.today()
    while True:
        scores, ids = db.index.search(vector[None, :], fetch)
        pairs = [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]
        with transaction(db.sessions) as session:
            rows = repo.faces_with_persons(session, [i for i, _ in pairs])
        best = {}
        for face_id, score in pairs:
            if face_id not in rows:
                continue
            face, person = rows[face_id]
            if person.id in best or not filters.admits(person, today):
                continue
            best[person.id] = Candidate(person, score, score >= threshold, face)
        if len(best) >= k or fetch >= total:
            break
        fetch = min(fetch * 4, total)
    return sorted(best.values(), key=lambda c: -c.score)[:k]


@dataclass
class Verification:
    match: bool
    score: float
    threshold: float
    face: DetectedFace
    best_face: Face | None


def verify(db: FaceDB, data: bytes, person_id: str, threshold: float | None = None) -> Verification:
    """Compare the photo's largest face with every enrolled face of one person."""
    cut = db.settings.match_threshold if threshold is None else threshold
    with transaction(db.sessions) as session:
        repo.get_person(session, person_id)
    faces = db.analyzer.analyze(data)
    if not faces:
        raise NoFaceFound("no face was found in the photo")
    probe = max(faces, key=lambda f: f.box.w * f.box.h)
    with transaction(db.sessions) as session:
        face_ids = repo.face_ids_of(session, person_id=person_id)
        ids, vectors = repo.embeddings_for(
            session, db.index.generation, face_ids, probe.embedding.shape[0]
        )
        if not len(ids):
            return Verification(False, -1.0, cut, probe, None)
        scores = vectors @ probe.embedding
        best = int(np.argmax(scores))
        best_face = repo.get_face(session, int(ids[best]))
    score = float(scores[best])
    return Verification(score >= cut, score, cut, probe, best_face)

"""1:N search (ranked identities per face) and 1:1 verification, both audited."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date

import numpy as np
from numpy.typing import NDArray

from facedb.agecheck import AgeCheck, check_face
from facedb.ages import age_at_photo, age_on, years_apart, years_since
from facedb.config import Settings
from facedb.domain import AgeSource, AuditAction, Gender, PersonStatus
from facedb.errors import InvalidInput, NoFaceFound
from facedb.index.face_index import FaceIndex
from facedb.pipeline.base import Analyzer
from facedb.pipeline.types import Face as DetectedFace
from facedb.records import Caller, FaceInContext, FaceRecord, PersonRecord
from facedb.services.persons import check_photo_date
from facedb.services.uploads import Upload
from facedb.store.unit import Store
from facedb.trail.audit import AuditService


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
    # The probe face's estimated age against this person's declared birth at the probe's
    # date (``agecheck.py``); None without a birth, a probe date or an estimate.
    age_check: AgeCheck | None = None


@dataclass(frozen=True)
class FaceMatches:
    face: DetectedFace
    candidates: list[Candidate]


@dataclass(frozen=True)
class Searched:
    """How large the register a search ran against was (before its filters): how deep a
    reviewer should read a candidate list depends on it."""

    persons: int  # with at least one face
    faces: int


@dataclass(frozen=True)
class SearchResult:
    faces: list[FaceMatches]
    threshold: float
    probe_taken_at: date | None = None
    searched: Searched = Searched(0, 0)

    def years(self, candidate: Candidate, today: date) -> tuple[float | None, float | None]:
        """Return (years since the candidate's photo, years between it and the probe's)."""
        if self.probe_taken_at is None:
            return years_since(candidate.taken_at, today), None
        return None, years_apart(self.probe_taken_at, candidate.taken_at, None, None)


@dataclass(frozen=True)
class Verification:
    match: bool
    score: float
    threshold: float
    face: DetectedFace
    best_face: FaceRecord | None


@dataclass
class _PersonsWithFaces:
    """How many persons have a face, counted again only once the index has applied changes
    since the last count (faces come and go only through the change log): the count scans
    the faces (about 50 ms at 10^5 of them), too slow for every search."""

    at_change: int = -1
    persons: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, store: Store, index: FaceIndex) -> int:
        change = index.last_change
        with self.lock:
            if change != self.at_change:
                with store.unit() as unit:
                    self.persons = unit.persons.count_with_faces()
                self.at_change = change
            return self.persons


@dataclass(frozen=True)
class SearchService:
    """1:N search (ranked identities per face) and 1:1 verification, both audited."""

    settings: Settings
    store: Store
    index: FaceIndex
    analyzer: Analyzer
    audit: AuditService
    _persons: _PersonsWithFaces = field(default_factory=_PersonsWithFaces)

    def search(
        self,
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
        with self.audit.audited(AuditAction.SEARCH, caller) as trail:
            if not 1 <= k <= 100:
                raise InvalidInput("k must lie between 1 and 100", field="k")
            if photo.taken_at is not None:
                check_photo_date(photo.taken_at)
            filters.check()
            faces = self._analyze(photo.read(self.settings.max_image_bytes))
            if not faces:
                raise NoFaceFound("no face was found in the photo")
            self.index.catch_up()
            cut = self.index.match_threshold if threshold is None else threshold
            ranked = self.rank([f.embedding for f in faces], k, cut, filters)
            matches = [
                FaceMatches(f, [_age_checked(c, photo.taken_at, f.age) for c in found])
                for f, found in zip(faces, ranked, strict=True)
            ]
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
        searched = Searched(self._persons.count(self.store, self.index), self.index.count)
        return SearchResult(matches, cut, photo.taken_at, searched)

    def rank(
        self,
        vectors: Sequence[NDArray[np.float32]],
        k: int,
        threshold: float,
        filters: SearchFilters,
    ) -> list[list[Candidate]]:
        """Return, for each vector, up to k persons, each once with their best face, by
        exact cosine similarity (``FaceIndex.top_persons``); the filters decide who may be a
        candidate, the database which faces still exist."""
        today = date.today()
        hits = self.index.top_persons(
            np.stack(vectors),
            k,
            self._in_context,
            admit=lambda _row, found: filters.admits(found.person, today),
        )
        return [[_candidate(h.owner, h.score, threshold) for h in row] for row in hits]

    def _in_context(self, face_ids: Sequence[int]) -> dict[int, FaceInContext]:
        with self.store.unit() as unit:
            return unit.photos.in_context(face_ids)

    def verify(
        self, caller: Caller, photo: Upload, person_id: str, threshold: float | None = None
    ) -> Verification:
        """Compare the photo's largest face with every enrolled face of one person (audited)."""
        cut = self.index.match_threshold if threshold is None else threshold
        with self.audit.audited(AuditAction.VERIFY, caller) as trail:
            with self.store.unit() as unit:
                unit.persons.get(person_id)
            faces = self._analyze(photo.read(self.settings.max_image_bytes))
            if not faces:
                raise NoFaceFound("no face was found in the photo")
            probe = max(faces, key=lambda f: f.box.w * f.box.h)
            result = self._compare(probe, person_id, cut)
            trail.faces_found = 1
            trail.results = [{"person_id": person_id, "score": result.score, "match": result.match}]
        return result

    def _compare(self, probe: DetectedFace, person_id: str, cut: float) -> Verification:
        with self.store.unit() as unit:
            face_ids = unit.photos.face_ids(person_id=person_id)
            ids, vectors = unit.embeddings.of_faces(
                self.index.generation, face_ids, probe.embedding.shape[0]
            )
            if not len(ids):
                return Verification(False, -1.0, cut, probe, None)
            scores = vectors @ probe.embedding
            best = int(np.argmax(scores))
            best_face = unit.photos.face(int(ids[best]))
        score = float(scores[best])
        return Verification(score >= cut, score, cut, probe, best_face)

    def _analyze(self, data: bytes) -> list[DetectedFace]:
        """Return the photo's faces embedded as the indexed faces were.

        A re-embed finishing during the call switches the recipe; the photo is then analysed
        again rather than compared across model versions.
        """
        faces = self.analyzer.analyze(data)
        if faces and faces[0].model_version != self.index.model_version:
            faces = self.analyzer.analyze(data)
        return faces


def _age_checked(candidate: Candidate, probe_date: date | None, age: float | None) -> Candidate:
    person = candidate.person
    check = check_face(probe_date, person.birth_date, person.birth_year, age)
    return replace(candidate, age_check=check) if check is not None else candidate


def _candidate(found: FaceInContext, score: float, threshold: float) -> Candidate:
    age, source = age_at_photo(found.declared_age, found.face.age)
    return Candidate(
        found.person, score, score >= threshold, found.face, found.taken_at, age, source
    )

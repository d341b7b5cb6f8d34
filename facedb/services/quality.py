"""What a face's image quality decides: the enrolment warning and refusal, a person's
"no photo of good enough quality", and a register's health (persons to ask for another
photo)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from facedb.config import Settings
from facedb.domain import PersonStatus, Register, register_of
from facedb.errors import LowQuality
from facedb.pipeline.base import Analyzer
from facedb.pipeline.quality import ADVICE
from facedb.pipeline.types import Detection, Quality
from facedb.records import FaceRecord, QualityRecord
from facedb.store.qualities import PersonFaces
from facedb.store.unit import Store

NOTHING_GOOD = "no photo of good enough quality: searches will miss"


def advice(quality: Quality | QualityRecord) -> str:
    """Return what a face's quality says in words, and which photo to look for instead."""
    return (
        f"face quality {quality.score}/100 — {quality.reason}. Look for {ADVICE[quality.limiting]}"
    )


def warning(quality: Quality | None, warn_below: int) -> str | None:
    """Return the enrolment warning of a face below ``warn_below`` (None: no warning)."""
    if quality is None or quality.score >= warn_below:
        return None
    return f"{advice(quality)}: until one is added, searches may miss this person"


def refuse_below(quality: Quality | None, floor: int) -> None:
    """Raise LowQuality for a face below ``floor`` (0: none is refused)."""
    if quality is not None and quality.score < floor:
        raise LowQuality(f"{advice(quality)}. Nothing was stored: FACEDB_QUALITY_FLOOR is {floor}")


def best_of(qualities: list[QualityRecord | None]) -> QualityRecord | None:
    """Return the best measured quality among a person's faces (None: none measured)."""
    measured = [q for q in qualities if q is not None]
    return max(measured, key=lambda q: q.score, default=None)


BANDS = (0, 20, 40, 60, 80)  # the lower ends of a distribution's 0-100 bands


@dataclass(frozen=True)
class PersonQuality:
    """A person's photos as quality sees them: the best face, and the warning when no
    face is good enough to search by."""

    faces: int
    measured: int
    best: QualityRecord | None
    warning: str | None


@dataclass(frozen=True)
class ToAsk:
    """A person whose best photo is below the bar: whom to ask for another photo."""

    person_id: str
    name: str
    external_ref: str | None
    status: PersonStatus
    best: QualityRecord | None  # None: no face measured (no face, or stored before)
    advice: str


@dataclass(frozen=True)
class RegisterQuality:
    """One register's quality: its faces' unified scores in bands, and whom to ask."""

    register: Register
    persons: int
    faces: int
    measured: int
    bands: dict[str, int]  # "0-19" → faces
    below: list[ToAsk]


MEASURE_BATCH = 200  # faces read per unit of work when measuring stored faces


@dataclass(frozen=True)
class QualityService:
    settings: Settings
    store: Store
    analyzer: Analyzer

    def measure_stored(self, progress: Callable[[int], object] | None = None) -> int:
        """Measure every face stored before quality was (reading its photo again), a batch
        per transaction so an interrupted run goes on where it stopped; return how many."""
        done = 0
        while True:
            with self.store.unit() as unit:
                faces = unit.qualities.unmeasured(MEASURE_BATCH)
                if not faces:
                    return done
                by_photo: dict[str, list[FaceRecord]] = {}
                for face in faces:
                    by_photo.setdefault(face.photo_id, []).append(face)
                for photo_id, photo_faces in by_photo.items():
                    content = unit.photos.content(photo_id)[0]
                    measured = self.analyzer.quality_of_stored(
                        content, [Detection.stored(f) for f in photo_faces],
                        [f.age for f in photo_faces],
                    )  # fmt: skip
                    for face, quality in zip(photo_faces, measured, strict=True):
                        unit.qualities.record(face.id, quality.as_dict())
            done += len(faces)
            if progress is not None:
                progress(len(faces))

    def of_person(self, person_id: str) -> PersonQuality:
        """Return a person's best face and, when it is below FACEDB_QUALITY_WARN_BELOW,
        NOTHING_GOOD (NotFound for an unknown person)."""
        with self.store.unit() as unit:
            unit.persons.get(person_id)
            qualities = unit.qualities.of_person(person_id)
        best = best_of(qualities)
        low = best is not None and best.score < self.settings.quality_warn_below
        return PersonQuality(
            len(qualities),
            sum(q is not None for q in qualities),
            best,
            f"{NOTHING_GOOD}. The best face: {advice(best)}" if low and best else None,
        )

    def registers(self, register: Register | None = None) -> list[RegisterQuality]:
        """Return each register's (or one's) quality distribution and the persons whose
        best photo is below FACEDB_QUALITY_WARN_BELOW or who have no measured face."""
        chosen = [register] if register is not None else list(Register)
        with self.store.unit() as unit:
            people = unit.qualities.by_person(frozenset(s for r in chosen for s in r.statuses))
        return [
            self._register(r, [p for p in people if register_of(p.status) is r]) for r in chosen
        ]

    def _register(self, register: Register, people: list[PersonFaces]) -> RegisterQuality:
        scores = [q.score for p in people for q in p.qualities if q is not None]
        bands = {_band(low): 0 for low in BANDS}
        for score in scores:
            bands[_band(max(low for low in BANDS if score >= low))] += 1
        below = []
        for p in people:
            best = best_of(p.qualities)
            if best is None:
                why = (
                    "no face measured: add a photo"
                    if not p.qualities
                    else (
                        "its faces were stored before quality was measured: `facedb quality` "
                        "measures them"
                    )
                )
                below.append(ToAsk(p.person_id, p.name, p.external_ref, p.status, None, why))
            elif best.score < self.settings.quality_warn_below:
                below.append(
                    ToAsk(p.person_id, p.name, p.external_ref, p.status, best, advice(best))
                )
        faces = sum(len(p.qualities) for p in people)
        return RegisterQuality(register, len(people), faces, len(scores), bands, below)


def _band(low: int) -> str:
    return f"{low}-{min(low + 19, 100)}" if low < 80 else "80-100"

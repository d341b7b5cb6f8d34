"""Queries and writes of cross-matching: faces to match, candidate pairs, the batch run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import func, insert, select, tuple_, update
from sqlalchemy.orm import Session

from facedb.domain import MatchState, Register, register_of
from facedb.store.models import CrossmatchRun, Embedding, Face, MatchCandidate, Person, Photo
from facedb.store.repository import decode_vectors

IN_CHUNK = 5000  # ids per IN (...): SQLite takes at most 32766 bound parameters


@dataclass(frozen=True)
class RegisterFace:
    """A face of a person in a register, with what a candidate pair records about it."""

    face_id: int
    person_id: str
    photo_id: str
    register: Register
    taken_at: date | None
    declared_age: float | None
    estimated_age: float | None


# What a pair records of a face: the columns of RegisterFace, register from the status.
_FACE_COLUMNS = (
    Face.id,
    Face.person_id,
    Face.photo_id,
    Person.status,
    Photo.taken_at,
    Photo.age_at_photo,
    Face.age,
)
_STATUSES = [s.value for r in Register for s in r.statuses]


def _faces_in_context(*extra: Any) -> Any:
    """Return a Select of the face columns (and ``extra``) joined to person and photo."""
    return (
        select(*_FACE_COLUMNS, *extra)
        .join(Person, Person.id == Face.person_id)
        .join(Photo, Photo.id == Face.photo_id)
    )


def _register_face(row: Sequence[Any]) -> RegisterFace | None:
    face_id, person_id, photo_id, status, taken_at, declared, estimated = row[:7]
    register = register_of(status)
    if register is None:
        return None
    return RegisterFace(int(face_id), person_id, photo_id, register, taken_at, declared, estimated)


def _with_vectors(
    session: Session, query: Any, dimension: int
) -> tuple[list[RegisterFace], NDArray[np.float32]]:
    kept = [
        (face, row[-1])
        for row in session.execute(query).all()
        if (face := _register_face(row)) is not None
    ]
    return [f for f, _ in kept], decode_vectors([v for _, v in kept], dimension)


def _register_faces(generation: int) -> Any:
    return (
        _faces_in_context(Embedding.vector)
        .join(Embedding, (Embedding.face_id == Face.id) & (Embedding.generation == generation))
        .where(Person.status.in_(_STATUSES))
    )


def faces_to_crossmatch(
    session: Session, generation: int, dimension: int, limit: int
) -> tuple[list[RegisterFace], NDArray[np.float32]]:
    """Return faces in a register not yet cross-matched (oldest first), with their vectors."""
    query = _register_faces(generation).where(Face.crossmatched_at.is_(None))
    return _with_vectors(session, query.order_by(Face.id).limit(limit), dimension)


def register_faces_after(
    session: Session, generation: int, dimension: int, after_face_id: int, limit: int
) -> tuple[list[RegisterFace], NDArray[np.float32]]:
    """Return faces in a register with ids above ``after_face_id``, by id."""
    query = _register_faces(generation).where(Face.id > after_face_id)
    return _with_vectors(session, query.order_by(Face.id).limit(limit), dimension)


def register_face_info(session: Session, face_ids: Sequence[int]) -> dict[int, RegisterFace]:
    """Return what a pair records of each face that exists and is in a register."""
    out = {}
    ids = list(face_ids)
    for start in range(0, len(ids), IN_CHUNK):
        query = _faces_in_context().where(Face.id.in_(ids[start : start + IN_CHUNK]))
        for row in session.execute(query).all():
            face = _register_face(row)
            if face is not None:
                out[face.face_id] = face
    return out


def register_face_count(session: Session) -> int:
    """Return how many faces belong to persons in a register."""
    query = (
        select(func.count(Face.id))
        .join(Person, Person.id == Face.person_id)
        .where(Person.status.in_(_STATUSES))
    )
    return int(session.execute(query).scalar_one())


def pending_count(session: Session) -> int:
    """Return how many faces in a register still wait to be cross-matched."""
    query = (
        select(func.count(Face.id))
        .join(Person, Person.id == Face.person_id)
        .where(Face.crossmatched_at.is_(None), Person.status.in_(_STATUSES))
    )
    return int(session.execute(query).scalar_one())


def mark_crossmatched(session: Session, face_ids: Sequence[int], at: datetime) -> None:
    ids = list(face_ids)
    for start in range(0, len(ids), IN_CHUNK):
        chunk = ids[start : start + IN_CHUNK]
        session.execute(update(Face).where(Face.id.in_(chunk)).values(crossmatched_at=at))


def reset_crossmatched(session: Session, person_id: str) -> None:
    """Make a person's faces wait for cross-matching again (their register changed)."""
    session.execute(update(Face).where(Face.person_id == person_id).values(crossmatched_at=None))


def candidates_for_pairs(
    session: Session, pairs: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], MatchCandidate]:
    """Return the stored rows of these (missing, found) person pairs."""
    out = {}
    wanted = list(pairs)
    step = IN_CHUNK // 2  # two bound parameters a pair
    for start in range(0, len(wanted), step):
        key = tuple_(MatchCandidate.missing_person_id, MatchCandidate.found_person_id)
        rows = session.execute(
            select(MatchCandidate).where(key.in_(wanted[start : start + step]))
        ).scalars()
        out.update({(r.missing_person_id, r.found_person_id): r for r in rows})
    return out


def insert_candidates(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert new pairs in one executemany."""
    if rows:
        session.execute(insert(MatchCandidate), rows)


def find_candidates(
    session: Session,
    *,
    state: MatchState | None,
    min_score: float | None,
    person_id: str | None,
    by_date: bool,
    limit: int,
    offset: int,
) -> tuple[list[MatchCandidate], int]:
    query = select(MatchCandidate)
    if state is not None:
        query = query.where(MatchCandidate.state == state.value)
    if min_score is not None:
        query = query.where(MatchCandidate.score >= min_score)
    if person_id is not None:
        query = query.where(
            (MatchCandidate.missing_person_id == person_id)
            | (MatchCandidate.found_person_id == person_id)
        )
    total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    order = (
        (MatchCandidate.raised_at.desc(), MatchCandidate.id.desc())
        if by_date
        else (MatchCandidate.score.desc(), MatchCandidate.id)
    )
    rows = session.execute(query.order_by(*order).limit(limit).offset(offset)).scalars()
    return list(rows), int(total)


def crossmatch_run(session: Session) -> CrossmatchRun:
    """Return the batch run row, locked; a finished run is restarted from the first face."""
    run = session.execute(
        select(CrossmatchRun).where(CrossmatchRun.id == 1).with_for_update()
    ).scalar_one_or_none()
    if run is None:
        run = CrossmatchRun(id=1, after_face_id=0)
        session.add(run)
        session.flush()
    return run

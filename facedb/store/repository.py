"""Queries and writes. Functions take a session, add and flush; the caller commits."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from facedb.domain import ChangeOp, MatchState
from facedb.errors import Conflict, NotFound
from facedb.store.models import (
    Change,
    Embedding,
    Face,
    IndexState,
    MatchCandidate,
    Person,
    Photo,
    SharedIndex,
    utcnow,
)

_Row = TypeVar("_Row")


# --- index state and change log ------------------------------------------------------------
def index_state(session: Session, model_name: str, model_version: str) -> IndexState:
    """Return the single index-state row, creating generation 1 on first use."""
    state = session.get(IndexState, 1)
    if state is None:
        state = IndexState(id=1, generation=1, model_name=model_name, model_version=model_version)
        session.add(state)
        try:
            session.flush()
        except IntegrityError:  # another process created it first
            session.rollback()
            state = session.get(IndexState, 1)
            assert state is not None
    return state


def lock_generation(session: Session) -> tuple[int, str | None]:
    """Return the active generation and its model version, holding a shared row lock until
    commit (PostgreSQL); (1, None) before the state row exists.

    Enrollment takes this lock so that a re-embed cannot switch generations between the
    moment an enrollment picks a generation and the moment it commits.
    """
    row = session.execute(
        select(IndexState.generation, IndexState.model_version)
        .where(IndexState.id == 1)
        .with_for_update(read=True)
    ).one_or_none()
    return (int(row[0]), str(row[1])) if row is not None else (1, None)


def log_changes(session: Session, op: ChangeOp, face_ids: Sequence[int]) -> None:
    session.add_all([Change(op=op, face_id=int(face_id)) for face_id in face_ids])


def last_change_id(session: Session) -> int:
    return int(session.execute(select(func.coalesce(func.max(Change.id), 0))).scalar_one())


def changes_after(session: Session, after_id: int, limit: int = 10_000) -> list[Change]:
    rows = session.execute(
        select(Change).where(Change.id > after_id).order_by(Change.id).limit(limit)
    )
    return list(rows.scalars())


def change_ids_between(session: Session, low: int, high: int) -> list[int]:
    """Return the ids of visible changes with ``low < id <= high``."""
    query = select(Change.id).where(Change.id > low, Change.id <= high)
    return [int(i) for i in session.execute(query).scalars()]


def changes_with_ids(session: Session, ids: Sequence[int]) -> list[Change]:
    if not ids:
        return []
    return list(session.execute(select(Change).where(Change.id.in_(list(ids)))).scalars())


def shared_index(session: Session, name: str) -> SharedIndex:
    """Return the shared index row ``name`` (no lock), creating an empty one on first use."""
    row = session.get(SharedIndex, name, populate_existing=True)
    if row is not None:
        return row
    try:
        with session.begin_nested():
            session.add(SharedIndex(name=name, collection="", gaps={}))
    except IntegrityError:  # another process created it first
        pass
    row = session.get(SharedIndex, name, populate_existing=True)
    assert row is not None
    return row


def claim_shared_index(session: Session, name: str) -> SharedIndex:
    """Return the shared index row ``name``, locked until the transaction ends.

    The lock is taken by an UPDATE, so it serialises appliers on SQLite (one writer) as on
    PostgreSQL (the row lock).
    """
    shared_index(session, name)
    session.execute(update(SharedIndex).where(SharedIndex.name == name).values(updated_at=utcnow()))
    row = session.get(SharedIndex, name, populate_existing=True)
    assert row is not None
    return row


# --- persons -------------------------------------------------------------------------------
def add_person(session: Session, **fields: Any) -> Person:
    person = Person(**fields)
    session.add(person)
    _flush_person(session, fields.get("external_ref"))
    return person


def _flush_person(session: Session, external_ref: object) -> None:
    """Flush, turning a duplicate external reference into Conflict."""
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict(f"a person with external_ref {external_ref!r} exists") from exc


def _get(session: Session, model: type[_Row], key: object, label: str) -> _Row:
    """Return the row with this primary key, or raise NotFound naming what is missing."""
    row = session.get(model, key)
    if row is None:
        raise NotFound(f"no {label} with id {key}")
    return row


def get_person(session: Session, person_id: str) -> Person:
    return _get(session, Person, person_id, "person")


def lock_person(session: Session, person_id: str) -> Person:
    """Return the person, holding a shared row lock until commit (PostgreSQL).

    A photo stored under this lock cannot race the person's deletion: the delete waits
    for it, or has committed and the person is not found.
    """
    person = session.execute(
        select(Person).where(Person.id == person_id).with_for_update(read=True)
    ).scalar_one_or_none()
    if person is None:
        raise NotFound(f"no person with id {person_id}")
    return person


def earliest_photo_date(session: Session, person_id: str) -> date | None:
    return session.execute(
        select(func.min(Photo.taken_at)).where(Photo.person_id == person_id)
    ).scalar_one_or_none()


def find_persons(
    session: Session,
    *,
    status: str | None = None,
    name: str | None = None,
    external_ref: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Person], int]:
    """Return one page of persons (newest first) and the total matching the filters."""
    query = select(Person)
    if status:
        query = query.where(Person.status == status)
    if name:  # a substring, taken literally: % and _ match themselves
        query = query.where(func.lower(Person.name).contains(name.lower(), autoescape=True))
    if external_ref:
        query = query.where(Person.external_ref == external_ref)
    total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    page = session.execute(
        query.order_by(Person.created_at.desc(), Person.id).limit(limit).offset(offset)
    )
    return list(page.scalars()), int(total)


def person_by_external_ref(session: Session, external_ref: str) -> Person | None:
    return session.execute(
        select(Person).where(Person.external_ref == external_ref)
    ).scalar_one_or_none()


def update_person(session: Session, person: Person, fields: dict[str, Any]) -> Person:
    for key, value in fields.items():
        setattr(person, key, value)
    _flush_person(session, fields.get("external_ref"))
    return person


def face_ids_of(
    session: Session, *, person_id: str | None = None, photo_id: str | None = None
) -> list[int]:
    query = select(Face.id)
    if person_id is not None:
        query = query.where(Face.person_id == person_id)
    if photo_id is not None:
        query = query.where(Face.photo_id == photo_id)
    return [int(i) for i in session.execute(query).scalars()]


def delete_person(session: Session, person_id: str) -> list[int]:
    """Delete a person with their photos, faces, embeddings and pending match candidates
    (decided ones stay, as history); return the removed face ids."""
    get_person(session, person_id)
    face_ids = face_ids_of(session, person_id=person_id)
    log_changes(session, ChangeOp.REMOVE, face_ids)
    session.execute(
        delete(MatchCandidate).where(
            MatchCandidate.state == MatchState.PENDING,
            (MatchCandidate.missing_person_id == person_id)
            | (MatchCandidate.found_person_id == person_id),
        )
    )
    session.execute(delete(Person).where(Person.id == person_id))
    return face_ids


# --- photos and faces --------------------------------------------------------------------
@dataclass
class NewFace:
    """A face to store: everything but the ids."""

    box: tuple[int, int, int, int]
    landmarks: dict[str, Any]
    confidence: float
    age: float | None
    gender: str | None
    gender_probability: float | None
    crop_jpeg: bytes
    embedding: NDArray[np.float32]


def photo_by_sha(session: Session, person_id: str, sha256: str) -> Photo | None:
    return session.execute(
        select(Photo).where(Photo.person_id == person_id, Photo.sha256 == sha256)
    ).scalar_one_or_none()


def add_photo(
    session: Session,
    photo: Photo,
    faces: Sequence[NewFace],
    generation: int,
    model_name: str,
    model_version: str,
) -> list[Face]:
    """Insert a photo, its faces and their embeddings, and log the index additions."""
    session.add(photo)
    session.flush()
    rows = []
    for new in faces:
        x, y, w, h = new.box
        row = Face(
            photo_id=photo.id,
            person_id=photo.person_id,
            box_x=x,
            box_y=y,
            box_w=w,
            box_h=h,
            landmarks=new.landmarks,
            confidence=new.confidence,
            age=new.age,
            gender=new.gender,
            gender_probability=new.gender_probability,
            crop_jpeg=new.crop_jpeg,
        )
        session.add(row)
        rows.append(row)
    session.flush()
    for row, new in zip(rows, faces, strict=True):
        session.add(
            Embedding(
                face_id=row.id,
                generation=generation,
                model_name=model_name,
                model_version=model_version,
                vector=encode_vector(new.embedding),
            )
        )
    log_changes(session, ChangeOp.ADD, [row.id for row in rows])
    session.flush()
    return rows


def get_photo(session: Session, photo_id: str) -> Photo:
    return _get(session, Photo, photo_id, "photo")


def photos_of(session: Session, person_id: str) -> list[tuple[Photo, list[Face]]]:
    photos = list(
        session.execute(
            select(Photo).where(Photo.person_id == person_id).order_by(Photo.created_at)
        ).scalars()
    )
    faces = faces_of_photos(session, [p.id for p in photos])
    return [(p, faces.get(p.id, [])) for p in photos]


def faces_of_photos(session: Session, photo_ids: Sequence[str]) -> dict[str, list[Face]]:
    out: dict[str, list[Face]] = {}
    if not photo_ids:
        return out
    for face in session.execute(
        select(Face).where(Face.photo_id.in_(photo_ids)).order_by(Face.id)
    ).scalars():
        out.setdefault(face.photo_id, []).append(face)
    return out


def delete_photo(session: Session, photo_id: str) -> list[int]:
    get_photo(session, photo_id)
    face_ids = face_ids_of(session, photo_id=photo_id)
    log_changes(session, ChangeOp.REMOVE, face_ids)
    session.execute(delete(Photo).where(Photo.id == photo_id))
    return face_ids


def get_face(session: Session, face_id: int) -> Face:
    return _get(session, Face, face_id, "face")


@dataclass(frozen=True)
class FaceInContext:
    """A face with its person and the date and declared age of its photo."""

    face: Face
    person: Person
    taken_at: date | None
    declared_age: float | None


def faces_with_persons(session: Session, face_ids: Sequence[int]) -> dict[int, FaceInContext]:
    """Return ``{face_id: FaceInContext}`` for the ids that still exist."""
    if not face_ids:
        return {}
    rows = session.execute(
        select(Face, Person, Photo.taken_at, Photo.age_at_photo)
        .join(Person, Person.id == Face.person_id)
        .join(Photo, Photo.id == Face.photo_id)
        .where(Face.id.in_(list(face_ids)))
    )
    return {int(row[0].id): FaceInContext(*row) for row in rows.tuples()}


# --- embeddings ------------------------------------------------------------------------------
def encode_vector(vector: NDArray[np.float32]) -> bytes:
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def decode_vectors(blobs: Sequence[bytes], dimension: int) -> NDArray[np.float32]:
    if not blobs:
        return np.zeros((0, dimension), dtype=np.float32)
    joined = np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), dimension)
    return np.ascontiguousarray(joined, dtype=np.float32)


def iter_embeddings(
    session: Session, generation: int, dimension: int, batch: int = 20_000
) -> Iterator[tuple[NDArray[np.int64], NDArray[np.float32]]]:
    """Yield (ids, vectors) chunks of every embedding of one generation, by face id."""
    after = -1
    while True:
        rows = session.execute(
            select(Embedding.face_id, Embedding.vector)
            .where(Embedding.generation == generation, Embedding.face_id > after)
            .order_by(Embedding.face_id)
            .limit(batch)
        ).all()
        if not rows:
            return
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        yield ids, decode_vectors([r[1] for r in rows], dimension)
        after = int(ids[-1])


def embeddings_for(
    session: Session, generation: int, face_ids: Sequence[int], dimension: int
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Return (ids, vectors) of those faces that have an embedding of this generation."""
    if not face_ids:
        return np.zeros(0, dtype=np.int64), np.zeros((0, dimension), dtype=np.float32)
    rows = session.execute(
        select(Embedding.face_id, Embedding.vector).where(
            Embedding.generation == generation, Embedding.face_id.in_(list(face_ids))
        )
    ).all()
    return np.array([r[0] for r in rows], dtype=np.int64), decode_vectors(
        [r[1] for r in rows], dimension
    )


def faces_missing_generation(session: Session, generation: int, limit: int) -> list[Face]:
    """Return faces (oldest first) that have no embedding of ``generation`` yet."""
    has = select(Embedding.face_id).where(Embedding.generation == generation)
    return list(
        session.execute(
            select(Face).where(Face.id.not_in(has)).order_by(Face.photo_id, Face.id).limit(limit)
        ).scalars()
    )


def count_faces(session: Session) -> int:
    return int(session.execute(select(func.count(Face.id))).scalar_one())


def drop_generations(session: Session, keep: int, *, above: bool) -> None:
    """Delete embeddings of generations above (orphans of a crashed job) or below ``keep``."""
    condition = Embedding.generation > keep if above else Embedding.generation < keep
    session.execute(delete(Embedding).where(condition))


def switch_generation(
    session: Session, generation: int, model_name: str, model_version: str
) -> None:
    session.execute(
        update(IndexState)
        .where(IndexState.id == 1)
        .values(generation=generation, model_name=model_name, model_version=model_version)
    )

"""Person records: create, read, update, delete (delete also empties the index of them)."""

from __future__ import annotations

from typing import Any

from facedb.service.context import FaceDB
from facedb.store import repository as repo
from facedb.store.db import transaction
from facedb.store.models import Person

STATUSES = ("missing", "found", "closed", "unidentified", "other")


def create_person(db: FaceDB, fields: dict[str, Any]) -> Person:
    with transaction(db.sessions) as session:
        return repo.add_person(session, **fields)


def get_person(db: FaceDB, person_id: str) -> Person:
    with transaction(db.sessions) as session:
        return repo.get_person(session, person_id)


def list_persons(db: FaceDB, **filters: Any) -> tuple[list[Person], int]:
    with transaction(db.sessions) as session:
        return repo.find_persons(session, **filters)


def update_person(db: FaceDB, person_id: str, fields: dict[str, Any]) -> Person:
    with transaction(db.sessions) as session:
        person = repo.get_person(session, person_id)
        return repo.update_person(session, person, fields)


def delete_person(db: FaceDB, person_id: str) -> int:
    """Erase a person, their photos and faces; the index drops them before this returns."""
    with transaction(db.sessions) as session:
        removed = repo.delete_person(session, person_id)
    db.index.apply_committed()
    return len(removed)

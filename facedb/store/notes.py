"""Case notes: appended, listed oldest first, never edited."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from facedb.records import NoteRecord
from facedb.store.models import CaseNote


class NoteRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, person_id: str, text: str, author: str | None) -> NoteRecord:
        note = CaseNote(person_id=person_id, text=text, author=author)
        self._session.add(note)
        self._session.flush()
        return NoteRecord.model_validate(note)

    def of_person(self, person_id: str) -> list[NoteRecord]:
        query = select(CaseNote).where(CaseNote.person_id == person_id).order_by(CaseNote.id)
        return [NoteRecord.model_validate(n) for n in self._session.execute(query).scalars()]

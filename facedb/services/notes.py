"""Case notes: what a caseworker records about a person's case, appended and audited."""

from __future__ import annotations

from dataclasses import dataclass

from facedb.domain import AuditAction
from facedb.errors import InvalidInput
from facedb.records import Caller, NoteRecord
from facedb.store.unit import Store
from facedb.trail.audit import LOCAL, AuditService

MAX_NOTE_CHARS = 10_000


@dataclass(frozen=True)
class NoteService:
    store: Store
    audit: AuditService

    def add(self, person_id: str, text: str, caller: Caller = LOCAL) -> NoteRecord:
        """Append a note to a person's case (audited); an empty or over-long note is refused
        and nothing is stored."""
        with self.audit.audited(AuditAction.NOTE_CREATE, caller) as trail:
            if not text.strip():
                raise InvalidInput("the note is empty: write what happened", field="text")
            if len(text) > MAX_NOTE_CHARS:
                raise InvalidInput(
                    f"the note has {len(text):,} characters; at most {MAX_NOTE_CHARS:,} fit in "
                    "one (split it)",
                    field="text",
                )
            with self.store.unit() as unit:
                unit.persons.get(person_id)  # NotFound: 404
                note = unit.notes.add(person_id, text, caller.key_name)
            trail.results = [{"person_id": person_id, "note_id": note.id}]
        return note

    def of_person(self, person_id: str) -> list[NoteRecord]:
        """Return a person's notes, oldest first."""
        with self.store.unit() as unit:
            unit.persons.get(person_id)
            return unit.notes.of_person(person_id)

"""Case notes over HTTP: appended by enrollers and reviewers, listed oldest first with their
author, refused when empty or too long (nothing stored), audited, erased with the person."""

from __future__ import annotations

import uuid

import pytest

from facedb.domain import AuditAction
from tests.api.conftest import Server


def test_notes_are_listed_oldest_first_with_author_and_audited(server: Server) -> None:
    with server.client("enroller") as enroller:
        pid = enroller.post("/v1/persons", json={"name": "Noted"}).json()["id"]
        first = enroller.post(f"/v1/persons/{pid}/notes", json={"text": "Mother called.\nNo news."})
        assert first.status_code == 201, first.text
    with server.client("reviewer") as reviewer:
        second = reviewer.post(f"/v1/persons/{pid}/notes", json={"text": "Checked the shelter."})
        assert second.status_code == 201
    with server.client("searcher") as searcher:
        notes = searcher.get(f"/v1/persons/{pid}/notes").json()
        refused = searcher.post(f"/v1/persons/{pid}/notes", json={"text": "not mine to write"})
    assert [(n["text"], n["author"]) for n in notes] == [
        ("Mother called.\nNo news.", "test-enroller"),
        ("Checked the shelter.", "test-reviewer"),
    ]
    assert notes[0]["id"] < notes[1]["id"] and notes[0]["created_at"] <= notes[1]["created_at"]
    assert refused.status_code == 403
    trail = server.services.audit.recent(10_000, AuditAction.NOTE_CREATE)
    mine = [e for e in trail if any(r.get("person_id") == pid for r in e.results)]
    assert len(mine) == 2
    assert trail[0].results == [{"error": "forbidden"}]  # the refused attempt, audited too


@pytest.mark.parametrize("text", ["", "   \n ", "x" * 10_001])
def test_an_empty_or_overlong_note_is_422_and_nothing_is_stored(server: Server, text: str) -> None:
    with server.client("enroller") as client:
        pid = client.post("/v1/persons", json={"name": "Unnoted"}).json()["id"]
        reply = client.post(f"/v1/persons/{pid}/notes", json={"text": text})
        assert reply.status_code == 422, reply.text
        assert reply.json()["error"]["details"][0]["field"].endswith("text")
        assert client.get(f"/v1/persons/{pid}/notes").json() == []


def test_notes_of_an_unknown_person_are_404_and_erased_with_the_person(server: Server) -> None:
    with server.client("enroller") as client:
        assert client.get(f"/v1/persons/{uuid.uuid4()}/notes").status_code == 404
        nobody = f"/v1/persons/{uuid.uuid4()}/notes"
        assert client.post(nobody, json={"text": "x"}).status_code == 404
        pid = client.post("/v1/persons", json={"name": "Erased"}).json()["id"]
        client.post(f"/v1/persons/{pid}/notes", json={"text": "to be erased"})
        assert client.delete(f"/v1/persons/{pid}").status_code == 204
        assert client.get(f"/v1/persons/{pid}/notes").status_code == 404
    with server.services.store.unit() as unit:
        assert unit.notes.of_person(pid) == []

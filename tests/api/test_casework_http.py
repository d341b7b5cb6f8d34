"""The review queue and the age context of search, over HTTP, with the roles."""

from __future__ import annotations

from typing import Any

import pytest

from facedb.domain import AuditAction
from tests.api.conftest import Server
from tests.fakes import fake_photo

MINDY = 81  # the identity this module enrolls (tests/fakes.py)


@pytest.fixture(scope="module")
def case(server: Server) -> dict[str, Any]:
    """A missing person enrolled from old photos; an unidentified person photographed now."""
    with server.client("enroller") as client:
        person = {"name": "Mindy (missing)", "status": "missing", "birth_date": "1979-06-24"}
        missing = client.post("/v1/persons", json=person).json()["id"]
        files = [("files", (f"{v}.png", fake_photo(MINDY, v, age=16), "image/png"))
                 for v in range(2)]  # fmt: skip
        assert client.post(f"/v1/persons/{missing}/photos", files=files,
                           data={"taken_at": "1995-05-01"}).status_code == 201  # fmt: skip
        found = client.post(
            "/v1/persons", json={"name": "Unidentified 4", "status": "unidentified"}
        ).json()["id"]
        probe = fake_photo(MINDY, 5, age=42)
        reply = client.post(f"/v1/persons/{found}/photos", data={"taken_at": "2021-09-01"},
                            files=[("files", ("now.png", probe, "image/png"))])  # fmt: skip
        assert reply.status_code == 201, reply.text
    return {"missing": missing, "found": found, "probe": probe}


def test_the_queue_shows_the_pair_with_ages_and_reviewers_decide(
    server: Server, case: dict[str, Any]
) -> None:
    with server.client("reviewer") as client:
        page = client.get(
            "/v1/matches", params={"state": "pending", "person_id": case["missing"]}
        ).json()
        assert page["total"] >= 1
        item = next(i for i in page["items"] if i["found"]["person"]["id"] == case["found"])
        assert item["missing"]["age_source"] == "declared"
        assert item["missing"]["age_at_photo"] == pytest.approx(15.9, abs=0.1)
        assert item["years_between"] == pytest.approx(26.3, abs=0.1)
        assert client.get(item["found"]["crop_url"]).headers["content-type"] == "image/jpeg"
        assert client.get(f"/v1/matches/{item['id']}").json() == item
        by_date = client.get("/v1/matches", params={"sort": "date", "limit": 1}).json()
        assert len(by_date["items"]) == 1

        with server.client("enroller") as enroller:
            refused = enroller.post(
                f"/v1/matches/{item['id']}/decision", json={"decision": "confirmed"}
            )
            assert refused.status_code == 403
        with server.client("searcher") as searcher:
            refused = searcher.post(
                f"/v1/matches/{item['id']}/decision", json={"decision": "rejected"}
            )
            assert refused.status_code == 403
        assert client.post("/v1/persons", json={"name": "no"}).status_code == 403  # may not enroll

        done = client.post(f"/v1/matches/{item['id']}/decision",
                           json={"decision": "confirmed", "note": "dental records"})  # fmt: skip
        assert done.status_code == 200, done.text
        body = done.json()
        assert body["state"] == "confirmed"
        assert (
            body["decision"]["by"] == "test-reviewer"
            and body["decision"]["note"] == "dental records"
        )
        assert body["missing"]["person"]["status"] == "closed"
        assert body["missing"]["person"]["linked_person_id"] == case["found"]
        bad = client.post(f"/v1/matches/{item['id']}/decision", json={"decision": "pending"})
        assert bad.status_code == 422
    entry = server.services.audit.recent(limit=1, action=AuditAction.DECISION)[0]
    assert entry.key_name == "test-reviewer" and entry.results[0]["decision"] == "confirmed"


def test_search_candidates_carry_the_age_context(server: Server, case: dict[str, Any]) -> None:
    with server.client("searcher") as client:
        upload = {"file": ("p.png", case["probe"], "image/png")}
        plain = client.post("/v1/search", data={"k": "3"}, files=upload).json()
        top = plain["faces"][0]["candidates"][0]
        assert top["person"]["id"] in (case["missing"], case["found"])
        mine = next(
            c for c in plain["faces"][0]["candidates"] if c["person"]["id"] == case["missing"]
        )
        assert mine["taken_at"] == "1995-05-01" and mine["age_source"] == "declared"
        assert mine["years_since_photo"] > 30 and mine["years_between"] is None
        assert mine["photo_url"].endswith("/image") and mine["crop_url"].endswith("/crop")
        form = {"k": "3", "taken_at": "2015-05-01"}
        dated = client.post("/v1/search", data=form, files=upload).json()
        mine = next(
            c for c in dated["faces"][0]["candidates"] if c["person"]["id"] == case["missing"]
        )
        assert (
            mine["years_between"] == pytest.approx(20.0, abs=0.05)
            and mine["years_since_photo"] is None
        )
    with server.client(None) as anonymous:
        health = anonymous.get("/v1/health").json()
        assert health["crossmatch"]["pending"] == 0
        assert "facedb_crossmatch_pending 0" in anonymous.get("/metrics").text

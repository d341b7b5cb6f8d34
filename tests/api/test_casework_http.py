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
    # Every attempt is audited, the refused ones with who tried and why.
    entries = server.services.audit.recent(limit=4, action=AuditAction.DECISION)
    assert [(e.key_name, e.results[0].get("decision") or e.results[0]["error"])
            for e in entries] == [
        ("test-reviewer", "invalid_input"),
        ("test-reviewer", "confirmed"),
        ("test-searcher", "forbidden"),
        ("test-enroller", "forbidden"),
    ]  # fmt: skip


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
        # Born 1979, searched with a 2015 photo whose face reads 42: the age fits.
        check = mine["age_check"]
        assert check["verdict"] == "consistent" and check["expected_age"] == pytest.approx(35.9)
        assert "looks about 42" in check["reason"] and check["band"][0] < 42 < check["band"][1]
        undated = next(
            c for c in plain["faces"][0]["candidates"] if c["person"]["id"] == case["missing"]
        )
        assert undated["age_check"] is None  # no probe date: no check, never a guess
    with server.client(None) as anonymous:
        health = anonymous.get("/v1/health").json()
        assert health["crossmatch"]["pending"] == 0
        assert "facedb_crossmatch_pending 0" in anonymous.get("/metrics").text


LINKED = 82  # the identity of the one-link test


def test_a_second_confirmation_is_refused_and_every_attempt_is_audited(server: Server) -> None:
    with server.client("enroller") as client:
        ids = {}
        for n, (name, status) in enumerate(
            [("Kai (missing)", "missing"), ("Found 1", "found"), ("Found 2", "unidentified")]
        ):
            ids[name] = client.post("/v1/persons", json={"name": name, "status": status}).json()[
                "id"
            ]
            files = [("files", (f"{n}.png", fake_photo(LINKED, n), "image/png"))]
            assert client.post(f"/v1/persons/{ids[name]}/photos", files=files).status_code == 201
    missing, first, second = ids.values()
    with server.client("reviewer") as client:
        queue = client.get("/v1/matches", params={"person_id": missing}).json()["items"]
        by_found = {m["found"]["person_id"]: m["id"] for m in queue}
        assert client.post(f"/v1/matches/{by_found[first]}/decision",
                           json={"decision": "confirmed"}).status_code == 200  # fmt: skip
        superseded = client.get("/v1/matches", params={"state": "superseded"}).json()["items"]
        assert by_found[second] in [m["id"] for m in superseded]
        refused = client.post(f"/v1/matches/{by_found[second]}/decision",
                              json={"decision": "confirmed"})  # fmt: skip
        assert refused.status_code == 409
        error = refused.json()["error"]
        assert error["code"] == "already_linked" and first in error["message"]
        assert client.get(f"/v1/persons/{second}").json()["linked_person_id"] is None
    with server.client(None) as anonymous:
        decision = anonymous.post(f"/v1/matches/{by_found[second]}/decision",
                                  json={"decision": "rejected"})  # fmt: skip
        assert decision.status_code == 401
    with server.client("searcher") as client:
        upload = {"file": ("p.png", fake_photo(LINKED, 9), "image/png")}
        query_filter = client.post("/v1/search", params={"gender": "female"}, files=upload)
        assert query_filter.status_code == 422
    attempts = server.services.audit.recent(limit=3, action=AuditAction.DECISION)
    assert [(e.key_name, e.results[0].get("error")) for e in attempts] == [
        (None, "unauthenticated"),
        ("test-reviewer", "already_linked"),
        ("test-reviewer", None),
    ]
    search = server.services.audit.recent(limit=1, action=AuditAction.SEARCH)[0]
    assert search.key_name == "test-searcher" and search.results == [{"error": "invalid_input"}]


def test_an_enroller_redates_a_photo_and_its_pairs_follow(server: Server) -> None:
    """A found person's photo filed under the wrong year: the pair read it as taken before
    the missing child's birth (impossible); the corrected date brings it to the queue."""
    with server.client("enroller") as client:
        child = {"name": "Redated child (missing)", "status": "missing", "birth_date": "2004-03-01"}
        missing = client.post("/v1/persons", json=child).json()["id"]
        files = [("files", ("baby.png", fake_photo(MINDY + 1, 0, age=1), "image/png"))]
        assert client.post(f"/v1/persons/{missing}/photos", files=files,
                           data={"taken_at": "2005-03-01"}).status_code == 201  # fmt: skip
        found = client.post("/v1/persons", json={"name": "Redated found",
                                                 "status": "found"}).json()["id"]  # fmt: skip
        files = [("files", ("care-home.png", fake_photo(MINDY + 1, 1, age=9), "image/png"))]
        reply = client.post(f"/v1/persons/{found}/photos", files=files,
                            data={"taken_at": "2003-06-01"})  # fmt: skip
        photo = reply.json()["results"][0]["photo"]["id"]

        def the_pair() -> dict[str, Any]:
            page = client.get("/v1/matches", params={"person_id": found, "limit": 100}).json()
            return next(i for i in page["items"] if i["missing"]["person"]["id"] == missing)

        before = the_pair()
        assert before["state"] == "impossible" and before["found"]["taken_at"] == "2003-06-01"

        with server.client("reviewer") as reviewer:
            assert reviewer.patch(f"/v1/photos/{photo}", json={"taken_at": None}).status_code == 403
        redated = client.patch(f"/v1/photos/{photo}", json={"taken_at": "2013-06-01"})
        assert redated.status_code == 200, redated.text
        assert redated.json()["taken_at"] == "2013-06-01"
        after = the_pair()
        assert after["id"] == before["id"] and after["state"] == "pending"
        assert after["found"]["taken_at"] == "2013-06-01"
        assert after["years_between"] == pytest.approx(8.3, abs=0.1)
        assert after["age_check"]["verdict"] == "consistent"

        # A date before the person's own birth is refused, saying so once; nothing changes.
        child_photo = client.get(f"/v1/persons/{missing}/photos").json()[0]["id"]
        refused = client.patch(f"/v1/photos/{child_photo}", json={"taken_at": "2001-01-01"})
        assert refused.status_code == 422
        message = refused.json()["error"]["message"]
        assert message.count("2001-01-01") == 1 and "before the person's birth" in message
        assert client.get(f"/v1/persons/{missing}/photos").json()[0]["taken_at"] == "2005-03-01"
        assert client.patch(f"/v1/photos/{photo}", json={}).status_code == 422
    with server.client("admin") as admin:
        trail = admin.get("/v1/audit", params={"action": AuditAction.PHOTO_UPDATE}).json()
        mine = [e for e in trail if e["results"] and e["results"][0].get("photo_id") == photo]
        assert mine and mine[0]["results"][0]["taken_at"] == {
            "before": "2003-06-01", "after": "2013-06-01"}  # fmt: skip

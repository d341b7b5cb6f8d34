"""The third outcome through HTTP: a pair found `inconclusive` (with a reason) leaves the
queue, is listed under its own state, and comes back with a new photo of either person."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.api.conftest import Server, shot, sign_in, unique
from tests.api.test_console_trust import enroll, erase
from tests.fakes import fake_photo

UNSURE = 243  # the identities this module enrolls (tests/fakes.py)
UNSURE_CONSOLE = 244


@pytest.mark.parametrize("server", ["sqlite", "postgres"], indirect=True)
def test_an_inconclusive_pair_waits_under_its_own_state_until_a_new_photo(
    server: Server,
) -> None:
    with server.client("admin") as admin, server.client("reviewer") as reviewer:
        ids = []
        for status, variant in (("missing", 0), ("found", 1)):
            pid = admin.post("/v1/persons", json={"name": unique("Unsure"), "status": status})
            ids.append(pid.json()["id"])
            photo = [("files", ("u.png", fake_photo(UNSURE, variant), "image/png"))]
            assert admin.post(f"/v1/persons/{ids[-1]}/photos", files=photo).status_code == 201
        pair = admin.get("/v1/matches", params={"person_id": ids[0]}).json()["items"][0]["id"]
        url = f"/v1/matches/{pair}/decision"

        no_reason = reviewer.post(url, json={"decision": "inconclusive", "note": "blurred"})
        assert no_reason.status_code == 422, no_reason.text
        assert "better_photo" in no_reason.json()["error"]["message"]
        unknown = reviewer.post(url, json={"decision": "inconclusive", "reason": "a hunch"})
        assert unknown.status_code == 422
        held = reviewer.post(url, json={"decision": "inconclusive", "reason": "dna_or_dental",
                                        "note": "ask the family for dental records"})  # fmt: skip
        assert held.status_code == 200, held.text
        body = held.json()
        assert body["state"] == "inconclusive"
        assert body["decision"]["reason"] == "dna_or_dental"
        assert body["decision"]["by"] == "test-reviewer"

        def listed(state: str) -> list[int]:
            page = admin.get("/v1/matches", params={"state": state, "person_id": ids[0]})
            return [m["id"] for m in page.json()["items"]]

        assert pair not in listed("pending") and pair in listed("inconclusive")
        trail = admin.get("/v1/audit", params={"action": "decision", "limit": 20}).json()
        said = [r for e in trail for r in e["results"] if r.get("match_id") == pair]
        assert any(r.get("reason") == "dna_or_dental" for r in said)

        photo = [("files", ("v.png", fake_photo(UNSURE, 2), "image/png"))]
        assert admin.post(f"/v1/persons/{ids[1]}/photos", files=photo).status_code == 201
        assert pair in listed("pending") and pair not in listed("inconclusive")
        for pid in ids:
            admin.delete(f"/v1/persons/{pid}")


@pytest.mark.slow
@pytest.mark.parametrize("server", ["sqlite"], indirect=True)
def test_a_reviewer_records_an_inconclusive_pair_in_the_console(server: Server, page: Any) -> None:
    missing = enroll(server, {"name": "Unsure Missing", "status": "missing"},
                     [(fake_photo(UNSURE_CONSOLE, 0), None)])  # fmt: skip
    found = enroll(server, {"name": "Unsure Found", "status": "found"},
                   [(fake_photo(UNSURE_CONSOLE, 1), None)])  # fmt: skip
    try:
        sign_in(page, server, "reviewer")
        page.goto(f"{server.url}/console/review")
        card = page.locator(".pair", has=page.get_by_role("link", name="Unsure Found"))
        card.get_by_role("button", name="Inconclusive…").click()
        ask = page.get_by_role("dialog")
        assert "until a new photo of either person arrives" in ask.inner_text()
        ask.get_by_label("What is needed").select_option("second_examiner")
        ask.get_by_label("Note (optional)").fill("The ears look alike; ask a colleague.")
        ask.get_by_role("button", name="Record as inconclusive").click()
        page.get_by_text(re.compile(r"Pair \d+ inconclusive: Unsure Missing")).wait_for()
        assert not card.count()  # out of the queue

        page.goto(f"{server.url}/console/review?state=inconclusive")
        held = page.locator(".pair", has=page.get_by_role("link", name="Unsure Found"))
        said = held.locator(".decision").inner_text()
        assert "inconclusive by test-reviewer" in said and "needs another examiner" in said
        assert "ask a colleague" in said
        for width in (1280, 390):
            page.set_viewport_size({"width": width, "height": 900})
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            shot(page, f"review-inconclusive-{width}")
    finally:
        erase(server, missing, found)

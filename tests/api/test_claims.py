"""A reviewer's claim on a pair: the other reviewer sees it and is refused (409 `claimed`)
until the claimer decides, releases it, or the claim lapses; every claim is audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.api.conftest import Server, unique
from tests.fakes import fake_photo

pytestmark = pytest.mark.parametrize("server", ["sqlite", "postgres"], indirect=True)

CLAIMED = 242  # the identity this module enrolls (tests/fakes.py)


def a_pair(server: Server) -> tuple[int, list[str]]:
    ids = []
    with server.client("admin") as client:
        for status, variant, day in (("missing", 0, "2012-01-01"), ("found", 1, "2024-01-01")):
            body = {"name": unique("Claimed"), "status": status}
            pid = client.post("/v1/persons", json=body).json()["id"]
            ids.append(pid)
            photo = [("files", ("c.png", fake_photo(CLAIMED, variant), "image/png"))]
            assert client.post(f"/v1/persons/{pid}/photos", files=photo,
                               data={"taken_at": day}).status_code == 201  # fmt: skip
        pair = client.get("/v1/matches", params={"person_id": ids[0]}).json()["items"][0]
    return int(pair["id"]), ids


def test_a_claim_holds_off_the_other_reviewer_until_decided_or_lapsed(server: Server) -> None:
    pair, persons = a_pair(server)
    with server.client("reviewer") as mine, server.client("admin") as other:
        claimed = mine.put(f"/v1/matches/{pair}/claim")
        assert claimed.status_code == 200, claimed.text
        claim: dict[str, Any] = claimed.json()["claim"]
        assert claim["by"] == "test-reviewer"
        until = datetime.fromisoformat(claim["until"])
        assert timedelta(minutes=29) < until - datetime.now(UTC) <= timedelta(minutes=30)
        assert other.get(f"/v1/matches/{pair}").json()["claim"]["by"] == "test-reviewer"
        rejected = {"decision": "rejected"}
        for refused in (other.put(f"/v1/matches/{pair}/claim"),
                        other.post(f"/v1/matches/{pair}/decision", json=rejected)):  # fmt: skip
            assert refused.status_code == 409 and refused.json()["error"]["code"] == "claimed"
            assert "test-reviewer" in refused.json()["error"]["message"]
        assert other.get(f"/v1/matches/{pair}").json()["state"] == "pending"

        lapsed = datetime.now(UTC) - timedelta(seconds=1)
        with server.services.store.unit() as unit:  # the claim lapses
            unit.pairs.claim(pair, "test-reviewer", lapsed)
        assert other.get(f"/v1/matches/{pair}").json()["claim"] is None
        assert other.put(f"/v1/matches/{pair}/claim").status_code == 200  # now theirs
        assert mine.delete(f"/v1/matches/{pair}/claim").status_code == 409
        decided = other.post(f"/v1/matches/{pair}/decision", json={"decision": "rejected"})
        assert decided.status_code == 200 and decided.json()["claim"] is None  # released
        assert other.put(f"/v1/matches/{pair}/claim").status_code == 422  # decided: no claim
        trail = other.get("/v1/audit", params={"action": "claim", "limit": 20}).json()
        results = [r for e in trail for r in e["results"]]
        assert sum(r.get("match_id") == pair for r in results) == 2  # the two claims made
        assert any(r.get("error") == "claimed" for r in results)  # and the refusals
        for pid in persons:
            other.delete(f"/v1/persons/{pid}")

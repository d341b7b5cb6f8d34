"""Notifications as an operator sees them: a real server whose receiver keeps failing, the
parked event in /v1/health and /metrics, re-sent by an admin; a bad webhook URL stops the
service from starting, naming the setting."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import Server, free_port, serve, shot, sign_in
from tests.conftest import REPO
from tests.factories import eventually
from tests.fakes import FakeAnalyzer, fake_photo
from tests.integration._receiver import Receiver

ANA = 91  # the identity this module enrolls (tests/fakes.py)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    instance = Receiver(free_port(), failures=1).start()
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def notifying(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[Server]:
    """A server that gives up on an event after one failed attempt."""
    folder = tmp_path_factory.mktemp("notifying")
    yield from serve("sqlite", folder, FakeAnalyzer, webhook_url=receiver.url,
                     webhook_max_attempts=1)  # fmt: skip


def test_a_parked_event_shows_in_health_metrics_and_the_console_and_is_sent_again(
    notifying: Server, receiver: Receiver, page: Any
) -> None:
    with notifying.client("enroller") as client:
        for status, age in (("missing", 8), ("found", 20)):
            person = client.post("/v1/persons", json={"name": f"Ana ({status})",
                                                      "status": status}).json()  # fmt: skip
            files = [("files", (f"{status}.png", fake_photo(ANA, age, age=age), "image/png"))]
            assert client.post(f"/v1/persons/{person['id']}/photos",
                               files=files).status_code == 201  # fmt: skip
    with notifying.client("admin") as admin:
        eventually(lambda: admin.get("/v1/health").json()["notifications"].get("parked") == 1)
        health = admin.get("/v1/health")
        assert health.status_code == 200  # a parked event is shown, not an outage
        assert health.json()["notifications"]["last_error"] == "the receiver answered HTTP 500"
        metrics = admin.get("/metrics").text
        assert 'facedb_webhook_events{state="parked"} 1' in metrics

        with notifying.client("reviewer") as reviewer:
            assert reviewer.post("/v1/admin/notifications/retry").status_code == 403

        # The console tells an admin, who sends it again from there.
        sign_in(page, notifying, "admin")
        notice = page.locator("[data-parked]")
        assert "1 notification(s) to the webhook receiver failed" in notice.inner_text()
        assert "HTTP 500" in notice.inner_text()
        shot(page, "notifications-parked")
        notice.get_by_role("button", name="send them again").click()
        notice.get_by_text("1 notification(s) will be sent again.").wait_for()
        eventually(lambda: admin.get("/v1/health").json()["notifications"]["delivered"] == 1)
        assert 'facedb_webhook_events{state="parked"} 0' in admin.get("/metrics").text
    (event,) = receiver.events
    assert event["type"] == "pair.pending" and event["pair"]["url"].startswith("/v1/matches/")


@pytest.mark.parametrize("url", ["ftp://hooks.example.org/x", "hooks.example.org/x"])
def test_a_webhook_url_that_is_not_http_stops_the_service_naming_the_setting(
    url: str, tmp_path: Path
) -> None:
    env = {**os.environ, "FACEDB_DATA_DIR": str(tmp_path), "FACEDB_WEBHOOK_URL": url}
    done = subprocess.run([sys.executable, "-m", "facedb.cli", "serve"], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith("error: FACEDB_WEBHOOK_URL:"), done.stderr
    assert "not an http(s) URL" in done.stderr and "Traceback" not in done.stderr

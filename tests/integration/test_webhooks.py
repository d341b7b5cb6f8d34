"""Notifications, on both databases: events written with what they announce, delivered at
least once to a local receiver that is down for a while, answers errors, or hangs while
the sending process is killed -9; parked and re-sent; signed; announced once."""

from __future__ import annotations

import hashlib
import hmac
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from facedb.domain import Delivery, EventType, JobKind, MatchState, PersonStatus
from facedb.records import PairRecord
from facedb.trail.audit import LOCAL
from facedb.trail.jobs import Job
from facedb.wiring import Services
from tests.api.conftest import free_port
from tests.conftest import REPO
from tests.factories import (
    add_person,
    add_synthetic_faces,
    eventually,
    make_settings,
    started,
    unit_vectors,
)
from tests.integration._receiver import Receiver

SECRET = "s3cret-for-tests"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A receiver on a free port, not yet listening (down until the test starts it)."""
    instance = Receiver(free_port())
    yield instance
    instance.stop()


def services(url: str, folder: Path, receiver: Receiver, **settings: Any) -> Services:
    defaults: dict[str, Any] = {"webhook_url": receiver.url, "webhook_secret": SECRET,
                                "webhook_retry_s": 0.05, "webhook_timeout_s": 2.0}  # fmt: skip
    return started(make_settings(folder, url, **(defaults | settings)))


def make_pair(db: Services, seed: int, score: float = 1.0) -> PairRecord:
    """A missing and a found person whose synthetic faces score ``score``: one pair."""
    first = unit_vectors(2, seed)
    other = first[1] - (first[1] @ first[0]) * first[0]
    other /= (other**2).sum() ** 0.5
    second = score * first[0] + (1 - score**2) ** 0.5 * other
    missing = add_person(db, f"Missing {seed}", status=PersonStatus.MISSING,
                         external_ref=f"M-{seed}")  # fmt: skip
    found = add_person(db, f"Found {seed}", status=PersonStatus.FOUND, external_ref=f"F-{seed}")
    add_synthetic_faces(db, missing, first[:1])
    add_synthetic_faces(db, found, second[None, :].astype("float32"))
    db.index.catch_up()
    db.crossmatch.sweep()
    items, _ = db.review.page()
    return next(p for p in items if p.missing.person_id == missing)


def deliver(db: Services, want: int, seconds: float = 20.0) -> None:
    """Run the sender until ``want`` events have been delivered."""
    done = 0

    def more() -> bool:
        nonlocal done
        done += db.webhooks.deliver_due()
        return done >= want

    eventually(more, seconds)


def test_events_wait_for_a_receiver_that_is_down_and_arrive_signed_once_it_is_up(
    url: str, tmp_path: Path, receiver: Receiver
) -> None:
    db = services(url, tmp_path, receiver)
    pair = make_pair(db, 1)
    assert db.webhooks.deliver_due() == 0  # nobody listening
    health = db.health.notifications()
    assert health["pending"] == 1 and health["delivered"] == 0
    assert "could not deliver" in health["last_error"]
    db.close()  # a restart in between loses nothing

    receiver.start()
    db = services(url, tmp_path, receiver)
    deliver(db, 1)
    (got,) = receiver.received
    event = got.event
    assert event["type"] == EventType.PAIR_PENDING == got.headers["x-facedb-event"]
    assert event["event_id"] == got.headers["x-facedb-event-id"]
    assert event["pair"]["id"] == pair.id and event["pair"]["url"] == f"/v1/matches/{pair.id}"
    assert event["missing"] == {"person_id": pair.missing.person_id, "external_ref": "M-1"}
    assert event["found"] == {"person_id": pair.found.person_id, "external_ref": "F-1"}
    expected = hmac.new(SECRET.encode(), got.body, hashlib.sha256).hexdigest()
    assert got.headers["x-facedb-signature"] == f"sha256={expected}"

    # Re-checking or a batch re-run does not announce the pair again; deciding does.
    db.crossmatch.recheck(pair.missing.person_id)
    db.crossmatch.run_batch(Job(kind=JobKind.CROSSMATCH, params={}, caller=LOCAL))
    assert db.webhooks.deliver_due() == 0
    db.review.decide(LOCAL, pair.id, MatchState.CONFIRMED, "same child")
    deliver(db, 1)
    decided = receiver.events[-1]
    assert decided["type"] == EventType.PAIR_DECIDED
    assert decided["pair"] == {"id": pair.id, "url": f"/v1/matches/{pair.id}",
                               "state": "confirmed", "before": "pending"}  # fmt: skip
    assert decided["decided_by"] == LOCAL.key_name
    assert db.health.notifications() | {"oldest_pending_s": None} == {
        "enabled": True, "pending": 0, "delivered": 2, "parked": 0, "oldest_pending_s": None,
        "last_error": None,
    }  # fmt: skip
    db.close()


def test_an_event_that_keeps_failing_is_parked_shown_and_sent_again_on_request(
    url: str, tmp_path: Path, receiver: Receiver
) -> None:
    receiver.failures = 3
    receiver.start()
    db = services(url, tmp_path, receiver, webhook_max_attempts=3)
    make_pair(db, 2)
    eventually(lambda: db.webhooks.deliver_due() == 0 and db.health.notifications()["parked"] == 1)
    health = db.health.notifications()
    assert health["pending"] == 0 and health["last_error"] == "the receiver answered HTTP 500"
    with db.store.unit() as unit:
        (event,) = unit.outbox.events()
    assert event.state is Delivery.PARKED and event.attempts == 3
    assert receiver.received == []

    assert db.webhooks.retry_parked() == 1
    deliver(db, 1)
    assert db.health.notifications()["parked"] == 0 and len(receiver.received) == 1
    db.close()


def test_pairs_below_the_minimum_score_or_from_before_the_webhook_are_not_announced(
    url: str, tmp_path: Path, receiver: Receiver
) -> None:
    receiver.start()
    quiet = started(make_settings(tmp_path, url))  # no webhook: nothing is queued
    make_pair(quiet, 3)
    with quiet.store.unit() as unit:
        assert unit.outbox.events() == []
    quiet.close()

    db = services(url, tmp_path, receiver, notify_min_score=0.5)
    low = make_pair(db, 4, score=0.4)
    high = make_pair(db, 5, score=0.6)
    assert low.state is high.state is MatchState.PENDING
    deliver(db, 1)
    assert [e["pair"]["id"] for e in receiver.events] == [high.id]
    db.close()


@pytest.mark.slow
def test_killed_minus_9_while_sending_the_event_is_sent_again_by_the_next_process(
    url: str, tmp_path: Path, receiver: Receiver
) -> None:
    """The sending process dies after the pair and its event committed, in the middle of an
    attempt (the receiver holds the request): the next process sends it once its lease ends."""
    started(make_settings(tmp_path, url)).close()  # migrated
    receiver.hang = True
    receiver.start()
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.integration._notifier", url, str(tmp_path / "data"),
         receiver.url],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        pair_id = int(child.stdout.readline())
        assert receiver.got_request.wait(30), "the child never sent the event"
    finally:
        child.kill()  # SIGKILL, mid-attempt
        child.wait(30)
    receiver.stop()

    answering = Receiver(receiver.port).start()
    try:
        db = services(url, tmp_path, answering)
        with db.store.unit() as unit:
            (event,) = unit.outbox.events()
        assert event.state is Delivery.PENDING and event.attempts == 0
        deliver(db, 1, seconds=30)  # after the lease: the timeout (3 s) and 5 s
        assert [e["pair"]["id"] for e in answering.events] == [pair_id]
        assert answering.events[0]["event_id"] == event.event_id
        db.close()
    finally:
        answering.stop()


def test_a_receiver_that_trickles_its_answer_is_cut_off_at_the_deadline(
    url: str, tmp_path: Path, receiver: Receiver
) -> None:
    """The timeout is a deadline for the whole attempt: a receiver answering a byte a second
    (a minute for its headers) holds each event 1 s, not a minute, so the events behind it
    are tried, and each lease (timeout + 5 s) outlives its attempt."""
    receiver.trickle = True
    receiver.start()
    db = services(url, tmp_path, receiver, webhook_timeout_s=1.0, webhook_retry_s=600.0)
    make_pair(db, 5)
    make_pair(db, 6)
    start = time.monotonic()
    assert db.webhooks.deliver_due() == 0
    took = time.monotonic() - start
    assert took < 2 * 1.0 + 4, took  # two attempts cut off at 1 s each (a trickle: 2 minutes)
    with db.store.unit() as unit:
        events = unit.outbox.events()
    assert [(e.state, e.attempts) for e in events] == [(Delivery.PENDING, 1)] * 2
    assert db.health.notifications()["last_error"] == "the receiver did not answer within 1 s"
    db.close()

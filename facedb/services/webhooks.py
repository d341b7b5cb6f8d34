"""Delivering the outbox's events to ``FACEDB_WEBHOOK_URL``: at least once, the oldest due
first, with retries (an event being retried does not hold back the ones after it).

Each event is POSTed as JSON with the headers ``X-FaceDB-Event`` (its type),
``X-FaceDB-Event-Id`` (the same id as the body's ``event_id``: a receiver drops repeats by
it) and, with ``FACEDB_WEBHOOK_SECRET``, ``X-FaceDB-Signature: sha256=<hex HMAC-SHA256 of the
body>``. A 2xx answer delivers it. Anything else (another status, a redirect, a refused
connection, no whole answer within ``webhook_timeout_s``, a deadline for the whole
attempt, so a receiver trickling its answer holds the sender no longer and the lease
outlives the attempt) is a failed attempt: tried again after ``webhook_retry_s``, doubled
each time (at most an hour apart), and after ``webhook_max_attempts`` the event is parked:
kept, counted in ``/v1/health`` and ``/metrics``, and sent again after
``POST /v1/admin/notifications/retry``. An event is leased while it is being sent, so a
process killed mid-attempt leaves it to be sent again, and several processes on one
PostgreSQL share the work without sending an event twice at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import json
import logging
import socket
import threading
import urllib.parse
from datetime import UTC, datetime, timedelta

from facedb.config import Settings
from facedb.store.outbox import Claimed, OutboxSummary
from facedb.store.unit import Store

log = logging.getLogger(__name__)
POLL_S = 1.0  # how often a sender looks for due events
MAX_BACKOFF_S = 3600.0


def signature(secret: str, body: bytes) -> str:
    """Return the value of X-FaceDB-Signature for a body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post_within(url: str, body: bytes, headers: dict[str, str], deadline_s: float) -> int:
    """POST ``body`` and return the answer's status, the whole exchange (connecting,
    sending, the status line, every header and the body) within ``deadline_s``: a
    receiver that trickles its answer a byte at a time is cut off at the deadline
    (TimeoutError), not after a timeout per byte. A redirect is a status like any other
    (never followed: the receiver must fix its address)."""
    target = urllib.parse.urlsplit(url)
    kind = http.client.HTTPSConnection if target.scheme == "https" else http.client.HTTPConnection
    connection = kind(target.hostname or "", target.port, timeout=deadline_s)
    expired = threading.Event()

    def cut_off() -> None:
        expired.set()
        if connection.sock is not None:
            with contextlib.suppress(OSError):  # already closed
                connection.sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked read

    timer = threading.Timer(deadline_s, cut_off)
    timer.daemon = True
    timer.start()
    try:
        path = target.path or "/"
        connection.request("POST", f"{path}?{target.query}" if target.query else path, body,
                           headers)  # fmt: skip
        answer = connection.getresponse()
        answer.read()
        status = int(answer.status)
    except (OSError, http.client.HTTPException):
        if expired.is_set():
            raise TimeoutError from None
        raise
    finally:
        timer.cancel()
        connection.close()
    if expired.is_set():
        raise TimeoutError
    return status


def backoff(attempts: int, first_s: float) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt."""
    return float(min(first_s * 2 ** (attempts - 1), MAX_BACKOFF_S))


class WebhookSender:
    """One daemon thread per process delivering due events; idle when no URL is set."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.url = settings.webhook_url
        self.secret = settings.webhook_secret
        self.timeout_s = settings.webhook_timeout_s
        self.retry_s = settings.webhook_retry_s
        self.max_attempts = settings.webhook_max_attempts
        self.store = store
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    def start(self) -> None:
        if not self.enabled or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="facedb-webhooks", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=timeout)
        self._thread = None

    def deliver_due(self) -> int:
        """Make one attempt at each due event, oldest first, until none is due or the
        sender is stopped; return how many were delivered. Each is leased for its attempt
        (the timeout and 5 s more)."""
        delivered = 0
        lease = timedelta(seconds=self.timeout_s + 5)
        while not self._stop.is_set():
            now = datetime.now(UTC)
            with self.store.unit() as unit:
                claimed = unit.outbox.claim(now, now + lease, 1)
            if not claimed:
                return delivered
            delivered += self._attempt(claimed[0])
        return delivered

    def retry_parked(self) -> int:
        """Put the parked events back in line; return how many."""
        with self.store.unit() as unit:
            return unit.outbox.retry_parked(datetime.now(UTC))

    def summary(self) -> OutboxSummary:
        with self.store.unit() as unit:
            return unit.outbox.summary()

    def _attempt(self, event: Claimed) -> int:
        error = self._post(event)
        now = datetime.now(UTC)
        with self.store.unit() as unit:
            if error is None:
                unit.outbox.delivered(event.id, now)
                return 1
            attempts = event.attempts + 1
            parked = attempts >= self.max_attempts
            retry_at = None if parked else now + timedelta(seconds=backoff(attempts, self.retry_s))
            unit.outbox.failed(event.id, error, retry_at)
        if parked:
            log.error("webhook event %s parked after %d attempts: %s", event.event_id,
                      attempts, error)  # fmt: skip
        else:
            log.warning("webhook event %s: attempt %d failed (%s)", event.event_id, attempts,
                        error)  # fmt: skip
        return 0

    def _post(self, event: Claimed) -> str | None:
        """POST one event; return None when the receiver took it, else what went wrong."""
        body = json.dumps(event.payload, sort_keys=True, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "FaceDB-webhooks",
            "X-FaceDB-Event": event.type.value,
            "X-FaceDB-Event-Id": event.event_id,
        }
        if self.secret:
            headers["X-FaceDB-Signature"] = signature(self.secret, body)
        try:
            status = post_within(self.url, body, headers, self.timeout_s)
        except TimeoutError:
            return f"the receiver did not answer within {self.timeout_s:g} s"
        except (OSError, http.client.HTTPException) as exc:
            return f"could not deliver: {exc}"
        return None if 200 <= status < 300 else f"the receiver answered HTTP {status}"

    def _run(self) -> None:
        while not self._stop.wait(POLL_S):
            try:
                self.deliver_due()
            except Exception as exc:  # the database may be down: keep trying
                log.warning("webhook delivery: %s", exc)

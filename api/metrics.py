"""Prometheus text-format metrics, kept in process memory."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Histogram:
    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.total = 0.0
        self.n = 0

    def observe(self, seconds: float) -> None:
        self.n += 1
        self.total += seconds
        for i, bound in enumerate(BUCKETS):
            if seconds <= bound:
                self.counts[i] += 1
                return
        self.counts[-1] += 1

    def lines(self, name: str, labels: str) -> list[str]:
        out, cumulative = [], 0
        sep = "," if labels else ""
        for bound, count in zip([*BUCKETS, float("inf")], self.counts, strict=True):
            cumulative += count
            le = "+Inf" if bound == float("inf") else repr(bound)
            out.append(f'{name}_bucket{{{labels}{sep}le="{le}"}} {cumulative}')
        out.append(f"{name}_sum{{{labels}}} {self.total:.6f}")
        out.append(f"{name}_count{{{labels}}} {self.n}")
        return out


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.latency: dict[tuple[str, str], Histogram] = defaultdict(Histogram)
        self.search_latency = Histogram()

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(method, route, status)] += 1
            self.latency[(method, route)].observe(seconds)

    def observe_search(self, seconds: float) -> None:
        with self._lock:
            self.search_latency.observe(seconds)

    def render(
        self, index_faces: int, crossmatch_pending: int | None, notifications: dict[str, Any]
    ) -> str:
        with self._lock:
            lines = [
                "# HELP facedb_requests_total HTTP requests by route and status.",
                "# TYPE facedb_requests_total counter",
            ]
            for (method, route, status), count in sorted(self.requests.items()):
                labels = f'method="{method}",route="{route}",status="{status}"'
                lines.append(f"facedb_requests_total{{{labels}}} {count}")
            lines += [
                "# HELP facedb_request_seconds HTTP request latency by route.",
                "# TYPE facedb_request_seconds histogram",
            ]
            for (method, route), hist in sorted(self.latency.items()):
                lines += hist.lines("facedb_request_seconds", f'method="{method}",route="{route}"')
            lines += [
                "# HELP facedb_search_seconds Index search latency per probe face.",
                "# TYPE facedb_search_seconds histogram",
                *self.search_latency.lines("facedb_search_seconds", ""),
                "# HELP facedb_index_faces Faces in this process's index.",
                "# TYPE facedb_index_faces gauge",
                f"facedb_index_faces {index_faces}",
            ]
            if crossmatch_pending is not None:
                lines += [
                    "# HELP facedb_crossmatch_pending Faces in a register not yet cross-matched.",
                    "# TYPE facedb_crossmatch_pending gauge",
                    f"facedb_crossmatch_pending {crossmatch_pending}",
                ]
            if "pending" in notifications:
                lines += [
                    "# HELP facedb_webhook_events Webhook events in the outbox by delivery state.",
                    "# TYPE facedb_webhook_events gauge",
                    *(f'facedb_webhook_events{{state="{state}"}} {notifications[state]}'
                      for state in ("pending", "delivered", "parked")),
                    "# HELP facedb_webhook_oldest_pending_seconds Age of the oldest undelivered "
                    "event (0: none).",
                    "# TYPE facedb_webhook_oldest_pending_seconds gauge",
                    "facedb_webhook_oldest_pending_seconds "
                    f"{notifications['oldest_pending_s'] or 0}",
                ]  # fmt: skip
        return "\n".join(lines) + "\n"


class MeasureRequests:
    """Counts every request by route template and status, with its latency."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            path = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.observe_request(scope["method"], path, status, time.perf_counter() - start)

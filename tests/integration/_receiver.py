"""A local webhook receiver for the notification tests: records what it is sent, and can
answer errors first or hold requests without answering (a receiver that hangs)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class Receiver:
    """Listens on 127.0.0.1:``port`` once started; answers ``failures`` 500s first, then
    200s; with ``hang``, reads each request and never answers; with ``trickle``, answers
    ``200 OK`` and then one byte of a header a second, for a minute."""

    port: int
    failures: int = 0
    hang: bool = False
    trickle: bool = False
    received: list[Received] = field(default_factory=list)
    got_request: threading.Event = field(default_factory=threading.Event)
    _server: ThreadingHTTPServer | None = None
    _release: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    @property
    def events(self) -> list[dict[str, Any]]:
        return [r.event for r in self.received]

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.got_request.set()
                if receiver.hang:
                    receiver._release.wait(60)
                    return
                if receiver.trickle:
                    try:
                        self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                        for byte in b"X-Slow: " + b"x" * 60:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                            if receiver._release.wait(1):
                                return
                    except OSError:  # the sender gave up and closed
                        return
                    return
                if receiver.failures > 0:
                    receiver.failures -= 1
                    self.send_response(500)
                else:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    receiver.received.append(Received(headers, body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

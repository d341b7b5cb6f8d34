"""The work a process does between requests: follow other processes' writes, cross-match
what waits, save the index snapshot now and then, and start the age axis when it is due.

Started by the HTTP service and by long command-line jobs (import, cross-match, re-index),
so whichever process runs, its index follows the change log and no enrolled face waits
long for cross-matching.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from facedb.index.face_index import FaceIndex

log = logging.getLogger(__name__)
TAIL_INTERVAL_S = 1.0
SNAPSHOT_INTERVAL_S = 60.0
SWEEP_INTERVAL_S = 5.0  # cross-match faces another process enrolled and did not match
PERIODIC_INTERVAL_S = 60.0  # slower checks (whether the age axis is due)


class Background:
    """One daemon thread: check the index and tail every second, sweep every 5 s, snapshot
    and run ``periodic`` every minute."""

    def __init__(self, index: FaceIndex, sweep: Callable[[threading.Event], int]) -> None:
        self.index = index
        self._sweep = sweep
        self._periodic: Callable[[], None] = lambda: None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, periodic: Callable[[], None] | None = None) -> None:
        if self._thread is not None:
            return
        if periodic is not None:
            self._periodic = periodic
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="facedb-background", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        """Stop and wait for the thread: a sweep ends its round of faces first, so nothing
        touches the database or the index after this returns."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=timeout)
        self._thread = None

    def _run(self) -> None:
        since_snapshot = since_sweep = 0.0
        trouble = ""  # the last failure, logged once until it changes or clears
        self._sweep(self._stop)  # whatever a process that died left waiting
        while not self._stop.wait(TAIL_INTERVAL_S):
            try:
                self.index.check()  # a restarted Milvus server gets its collection loaded
                self.index.catch_up()
                since_snapshot += TAIL_INTERVAL_S
                since_sweep += TAIL_INTERVAL_S
                if since_sweep >= SWEEP_INTERVAL_S:
                    self._sweep(self._stop)
                    since_sweep = 0.0
                if since_snapshot >= SNAPSHOT_INTERVAL_S:
                    self.index.save()
                    self._periodic()
                    since_snapshot = 0.0
                if trouble:
                    log.info("background work resumed after: %s", trouble)
                    trouble = ""
            except Exception as exc:  # the database or the index may be down; keep following
                if str(exc) != trouble:
                    trouble = str(exc)
                    log.warning("background work: %s", trouble)

"""One search lane: searches that arrive together share one index call.

Exact search reads every stored vector once per call, whatever the number of queries in
it (faiss turns a batch into one matrix product), so under load one pass can serve many
searches. A caller that finds the lane idle leads it: it runs every waiting request as one
batch, and when its own rows are in, hands the lead to the first request still waiting.
Alone, a caller pays a direct call; the lane is also the single lane a GPU index needs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

Search = Callable[[NDArray[np.float32], int], tuple[NDArray[np.float32], NDArray[np.int64]]]


@dataclass
class _Request:
    queries: NDArray[np.float32]
    k: int
    wake: threading.Event = field(default_factory=threading.Event)
    lead: bool = False  # woken to lead the lane, not with its rows
    rows: tuple[NDArray[np.float32], NDArray[np.int64]] | None = None
    error: BaseException | None = None


class SearchLane:
    """Batches concurrent ``search(queries, k)`` calls into calls of ``search`` itself."""

    def __init__(self, search: Search, max_batch: int = 64) -> None:
        self._search = search
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._waiting: list[_Request] = []
        self._busy = False
        self.calls = 0  # index calls made (for tests and metrics)

    def search(
        self, queries: NDArray[np.float32], k: int
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        request = _Request(np.atleast_2d(queries), k)
        with self._lock:
            self._waiting.append(request)
            leading = not self._busy
            self._busy = True
        if not leading:
            request.wake.wait()
            if not request.lead:
                return _outcome(request)
        while request.rows is None and request.error is None:
            with self._lock:
                batch = self._waiting[: self.max_batch]
                del self._waiting[: len(batch)]
            self._run(batch)
        with self._lock:
            if self._waiting:
                successor = self._waiting[0]
                successor.lead = True
                successor.wake.set()
            else:
                self._busy = False
        return _outcome(request)

    def _run(self, batch: list[_Request]) -> None:
        k = max(r.k for r in batch)
        try:
            scores, ids = self._search(np.concatenate([r.queries for r in batch]), k)
            self.calls += 1
        except BaseException as exc:  # every waiter learns of it, not only the leader
            for r in batch:
                r.error = exc
                r.lead = False
                r.wake.set()
            return
        start = 0
        for r in batch:
            end = start + len(r.queries)
            r.rows = (scores[start:end, : r.k], ids[start:end, : r.k])
            r.lead = False
            r.wake.set()
            start = end


def _outcome(request: _Request) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    if request.error is not None:
        raise request.error
    assert request.rows is not None
    return request.rows

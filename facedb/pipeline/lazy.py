"""The base of every model the pipeline holds: built on first use, once, under a lock."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class LazyModel:
    """A model built lazily and thread-safely; its calls are serialised by one lock.

    Subclasses implement ``_build``; callers run the model inside ``with self.using() as m``.
    """

    def __init__(self) -> None:
        self._model: Any = None
        self._lock = threading.Lock()

    def _build(self) -> Any:
        raise NotImplementedError

    def load(self) -> None:
        """Build the model now (start-up) rather than on first use."""
        with self.using():
            pass

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @contextmanager
    def using(self) -> Iterator[Any]:
        """Yield the built model, holding the lock: one call at a time."""
        with self._lock:
            if self._model is None:
                self._model = self._build()
            yield self._model

"""How far the change log has been applied to an index."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

GAP_PATIENCE_S = 60.0


@dataclass
class ChangeCursor:
    """The highest change id applied, and the ids below it not yet visible (gaps) with the
    wall-clock time each was first missed.

    PostgreSQL may commit change ids out of order (id 11 visible before id 10): a gap is
    re-read until it appears or is ``GAP_PATIENCE_S`` old (a rolled-back transaction leaves
    a permanent gap).
    """

    last_change: int = 0
    gaps: dict[int, float] = field(default_factory=dict)

    def advance(self, seen_ids: list[int]) -> None:
        """Record the change ids just applied; ids skipped below the highest become gaps."""
        now = time.time()
        for change_id in seen_ids:
            self.gaps.pop(change_id, None)
        top = max(seen_ids)
        seen = set(seen_ids)
        for missing in range(self.last_change + 1, top):
            if missing not in seen:
                self.gaps.setdefault(missing, now)
        self.last_change = max(self.last_change, top)
        self.expire_gaps()

    def expire_gaps(self) -> None:
        cutoff = time.time() - GAP_PATIENCE_S
        self.gaps = {g: t for g, t in self.gaps.items() if t > cutoff}

    def add_gaps(self, change_ids: list[int]) -> None:
        now = time.time()
        for change_id in change_ids:
            self.gaps.setdefault(change_id, now)

    def copy(self) -> ChangeCursor:
        return ChangeCursor(self.last_change, dict(self.gaps))

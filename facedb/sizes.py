"""Sizes as people say them: 20971520 bytes is "20 MB"."""

from __future__ import annotations

UNITS = ((1 << 30, "GB"), (1 << 20, "MB"), (1 << 10, "KB"))


def readable(size: int) -> str:
    """Return a byte count in the largest unit it reaches, to one decimal at most."""
    for scale, unit in UNITS:
        if size >= scale:
            return f"{round(size / scale, 1):g} {unit}"
    return f"{size} bytes"

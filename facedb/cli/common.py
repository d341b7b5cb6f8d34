"""What the commands share: the handler type, building the services, printing columns."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from facedb.config import get_settings
from facedb.wiring import Services, build

Handler = Callable[[argparse.Namespace], int]


def services(start: bool = False, load_models: bool = False, background: bool = False) -> Services:
    """Return the services of this command. Unstarted, they still refuse an un-migrated
    database; ``start`` also serves the index, and ``background`` follows other processes
    and sweeps cross-matching while a long job runs."""
    built = build(get_settings())
    if start:
        built.start(load_models=load_models, background=background)
    else:
        built.store.require_migrated()
    return built


def print_columns(rows: list[tuple[str, ...]]) -> None:
    """Print rows as left-aligned columns, each as wide as its widest cell."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))] if rows else []
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )

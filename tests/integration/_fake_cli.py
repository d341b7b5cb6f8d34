"""The `facedb` command line with the fake analyzer, for subprocess tests without networks.

Usage: python -m tests.integration._fake_cli ARGS... (as `facedb ARGS...`)
Everything is the real command but the analyzer (see tests/fakes.py).
"""

from __future__ import annotations

import sys

from facedb.cli import common, main
from tests.fakes import FakeAnalyzer

_real_build = common.build


def _build_with_fake(settings, analyzer=None):  # type: ignore[no-untyped-def]
    return _real_build(settings, analyzer or FakeAnalyzer(settings))


if __name__ == "__main__":
    common.build = _build_with_fake  # type: ignore[assignment]
    sys.exit(main(sys.argv[1:]))

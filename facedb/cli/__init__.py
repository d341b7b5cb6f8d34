"""FaceDB: enroll people with face photos, search them 1:N, and run the service.

The `facedb` program lives in the virtual environment `make` builds: .venv/bin/facedb.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from facedb.cli.common import Handler
from facedb.errors import FaceDBError


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return handler(args)
    except FaceDBError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    except ValidationError as exc:  # the settings (environment or TOML file) are wrong
        for problem in exc.errors():
            setting = "FACEDB_" + "_".join(str(part) for part in problem["loc"]).upper()
            message = str(problem["msg"]).removeprefix("Value error, ")
            print(f"error: {setting}: {message}", file=sys.stderr)
        return 2


# Libraries that log their start-up at INFO (TensorFlow, faiss, Alembic): quiet by default.
_NOISY_LOGGERS = ("tensorflow", "absl", "h5py", "faiss", "alembic", "deepface", "matplotlib")


def _configure_logging(verbose: bool) -> None:
    import os

    if not verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # read when TensorFlow loads
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.WARNING)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="facedb", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show the libraries' own log lines too"
    )
    commands = parser.add_subparsers(title="commands")

    from facedb.cli import admin, bulk, evaluate, service

    service.add_commands(commands)
    admin.add_commands(commands)
    evaluate.add_commands(commands)
    bulk.add_commands(commands)
    return parser

"""Administrative sub-commands: database migrations and the re-index job."""

from __future__ import annotations

import argparse
import threading
from typing import Any

from facedb.config import get_settings


def add_admin_commands(commands: Any) -> None:
    """Register the admin sub-commands on the ``facedb`` parser."""
    db = commands.add_parser("db", help="database migrations")
    db_commands = db.add_subparsers(title="db commands")
    up = db_commands.add_parser("upgrade", help="apply migrations (default: to the latest)")
    up.add_argument("revision", nargs="?", default="head")
    up.set_defaults(handler=_db_upgrade)
    down = db_commands.add_parser("downgrade", help="revert migrations to a revision")
    down.add_argument("revision")
    down.set_defaults(handler=_db_downgrade)

    reindex = commands.add_parser("reindex", help="rebuild the index from the database")
    reindex.add_argument(
        "--re-embed",
        action="store_true",
        help="recompute every embedding from the stored photos (after a model upgrade)",
    )
    reindex.set_defaults(handler=_reindex)


def _db_upgrade(args: argparse.Namespace) -> int:
    from facedb.store.db import upgrade

    settings = get_settings()
    upgrade(settings.database_url, args.revision)
    print(f"database at {args.revision}: {_redacted(settings.database_url)}")
    return 0


def _db_downgrade(args: argparse.Namespace) -> int:
    from facedb.store.db import downgrade

    downgrade(get_settings().database_url, args.revision)
    return 0


def _reindex(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from facedb.service.context import FaceDB
    from facedb.service.jobs import Job, run_job
    from facedb.service.reindex import reindex

    db = FaceDB(get_settings())
    db.start(load_models=args.re_embed)
    job = Job(kind="reindex", params={"re_embed": args.re_embed})
    worker = threading.Thread(target=run_job, args=(job, lambda j: reindex(db, j, args.re_embed)))
    worker.start()
    with tqdm(unit="face") as bar:
        while worker.is_alive():
            worker.join(0.5)
            bar.total = job.total or None
            bar.n = job.done
            bar.refresh()
    db.close()
    for error in job.errors:
        print(f"error: {error}")
    print(f"reindex {job.state}: {job.counts}")
    return 0 if job.state == "succeeded" else 1


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)

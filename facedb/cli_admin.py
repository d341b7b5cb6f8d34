"""Administrative sub-commands: database migrations and the re-index job."""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path
from typing import Any

from facedb.config import get_settings
from facedb.domain import AuditAction, JobState, MatchState, Role


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

    crossmatch = commands.add_parser(
        "crossmatch",
        help="match every face of the missing register against the found one (resumable)",
    )
    crossmatch.set_defaults(handler=_crossmatch)

    keys = commands.add_parser("keys", help="API keys")
    key_commands = keys.add_subparsers(title="keys commands")
    create = key_commands.add_parser("create", help="create a key; its secret is shown once")
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.add_argument("--name", default="", help="who or what holds the key")
    create.set_defaults(handler=_keys_create)
    listing = key_commands.add_parser("list", help="list keys (never their secrets)")
    listing.set_defaults(handler=_keys_list)
    revoke = key_commands.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("key_id")
    revoke.set_defaults(handler=_keys_revoke)

    for name, helptext in (
        ("eval", "measure accuracy on a folder of per-person photo folders"),
        ("calibrate", "choose the match threshold for a target FAR and save it"),
    ):
        command = commands.add_parser(name, help=helptext)
        command.add_argument("directory", type=Path, help="one folder of photos per person")
        command.add_argument(
            "--gallery", type=int, default=None, help="photos enrolled per person (3; open-set 1)"
        )
        command.add_argument(
            "--holdout",
            type=float,
            default=None,
            help="share of persons kept out (0.2; open-set 0)",
        )
        command.add_argument("--seed", type=int, default=0)
        command.add_argument("--far", type=float, default=0.001, help="target false accept rate")
        command.add_argument(
            "--distractors",
            type=Path,
            default=None,
            help="open-set: also enroll every photo of this folder, each as its own person",
        )
        command.add_argument(
            "--ages",
            type=Path,
            default=None,
            help="cross-age: CSV of photo ages (path,age or path,taken_at,birth_date); each "
            "person's earliest photo is enrolled and the latest searched",
        )
        command.add_argument(
            "--ages-in-names",
            action="store_true",
            help="cross-age, with ages from the file names (name_12.jpg, FG-NET 001A12.JPG)",
        )
        command.add_argument(
            "--bootstrap", type=int, default=1000, help="resamples for the 95%% intervals"
        )
        command.add_argument(
            "--model-version",
            default=None,
            help="measure another embedding recipe (e.g. the one before the current, to "
            "compare); `facedb models status` lists them",
        )
        command.add_argument("--json", action="store_true", help="print the report as JSON")
        command.add_argument("--plot", type=Path, default=None, help="write the DET/histogram PNG")
        command.set_defaults(handler=_eval if name == "eval" else _calibrate)

    audit = commands.add_parser("audit", help="list recent searches and verifications")
    audit.add_argument("--limit", type=int, default=50)
    audit.add_argument("--action", choices=[a.value for a in AuditAction], default=None)
    audit.add_argument("--json", action="store_true")
    audit.set_defaults(handler=_audit)


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

    from facedb.domain import JobKind
    from facedb.service.context import FaceDB
    from facedb.service.jobs import Job, run_job
    from facedb.service.reindex import reindex

    db = FaceDB(get_settings())
    db.start(load_models=args.re_embed)
    job = Job(kind=JobKind.REINDEX, params={"re_embed": args.re_embed})
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


def _crossmatch(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from facedb.domain import JobKind
    from facedb.service.crossmatch import run_batch
    from facedb.service.jobs import Job, run_job
    from facedb.service.review import list_matches

    db = _started_db()
    db.start(load_models=False)
    job = Job(kind=JobKind.CROSSMATCH, params={})
    with tqdm(unit="face", desc="cross-match") as bar:
        run_job(job, lambda j: run_batch(db, j, progress=bar.update))
    _, pending = list_matches(db, state=MatchState.PENDING, limit=1)
    db.close()
    for error in job.errors:
        print(f"error: {error}")
    print(f"crossmatch {job.state}: {job.counts}; {pending} pairs wait for review")
    return 0 if job.state == JobState.SUCCEEDED else 1


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _started_db() -> Any:
    from facedb.service.context import FaceDB
    from facedb.store.db import require_migrated

    db = FaceDB(get_settings())
    require_migrated(db.engine, db.settings.database_url)
    return db


def _keys_create(args: argparse.Namespace) -> int:
    from facedb.service.keys import create_key

    key, secret = create_key(_started_db(), args.role, args.name or args.role)
    print(f"created {key.role} key {key.id} ({key.name})")
    print(f"secret (shown once, store it now): {secret}")
    return 0


def _keys_list(args: argparse.Namespace) -> int:
    from facedb.service.keys import list_keys

    for key in list_keys(_started_db()):
        state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
        print(f"{key.id}  {key.role:9} {key.prefix}…  {state:18} {key.name}")
    return 0


def _keys_revoke(args: argparse.Namespace) -> int:
    from facedb.service.keys import revoke_key

    revoke_key(_started_db(), args.key_id)
    print(f"revoked {args.key_id}")
    return 0


def _audit(args: argparse.Namespace) -> int:
    from facedb.service.audit import recent

    action = AuditAction(args.action) if args.action else None
    entries = recent(_started_db(), args.limit, action)
    if args.json:
        print(json.dumps([e.as_dict() for e in entries], indent=2))
        return 0
    for e in entries:
        print(
            f"{e.at:%Y-%m-%d %H:%M:%S} {e.action:6} key={e.key_name or '-'} "
            f"client={e.client or '-'} faces={e.faces_found} {_outcome(e.results)}"
        )
    return 0


def _outcome(results: list[Any]) -> str:
    """Return one audit entry's results in a few words: its error, or each face's best."""
    parts = []
    for item in results:
        if "error" in item:
            parts.append(f"refused: {item['error']}")
        elif "decision" in item:
            parts.append(f"{item['decision']} pair {item['match_id']} (was {item['before']})")
        elif "manifest" in item:
            outcomes = ", ".join(f"{n} {k}" for k, n in sorted(item["outcomes"].items()))
            parts.append(f"imported {item['manifest']}: {outcomes or 'no rows'}")
        elif "target" in item:
            parts.append(
                f"exported {len(item['persons'])} persons, {item['photos']} photos "
                f"to {item['target']}"
            )
        elif "candidates" in item:
            best = item["candidates"][0] if item["candidates"] else None
            parts.append(f"top {best['person_id']} {best['score']:.3f}" if best else "no candidate")
        else:
            parts.append(f"{item.get('person_id')} score {item.get('score', 0):.3f}")
    return "; ".join(parts) or "-"


def _run_eval(args: argparse.Namespace) -> dict[str, Any]:
    from facedb.errors import InvalidInput
    from facedb.evaluation import protocol, render

    if not args.directory.is_dir():
        raise InvalidInput(f"{args.directory} is not a folder of per-person photo folders")
    if args.distractors is not None and not args.distractors.is_dir():
        raise InvalidInput(f"--distractors {args.distractors} is not a folder of photos")
    if args.ages is not None and not args.ages.is_file():
        raise InvalidInput(f"--ages {args.ages} is not a CSV file")
    open_set = args.distractors is not None
    config = protocol.EvalConfig(
        # Open-set: one photo per person enrolled, nobody held out (the distractors and
        # each search without its mate are the non-mated searches) unless asked otherwise.
        gallery_per_person=args.gallery if args.gallery is not None else (1 if open_set else 3),
        holdout=args.holdout if args.holdout is not None else (0.0 if open_set else 0.2),
        seed=args.seed,
        target_far=args.far,
        progress=sys.stderr.isatty() or not args.json,
        distractors=args.distractors,
        ages=args.ages,
        ages_in_names=args.ages_in_names,
        bootstrap=args.bootstrap,
        model_version=args.model_version,
    )
    report = protocol.run(args.directory, get_settings(), config)
    if args.plot:
        report["plot"] = str(render.plot(report, args.plot))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(render.table(report))
    return report


def _eval(args: argparse.Namespace) -> int:
    _run_eval(args)
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from facedb.config import write_config_value

    report = _run_eval(args)
    threshold = report["threshold"]
    if not threshold["measurable"]:
        print(
            f"warning: {report['scores']['nonmated_pairs']} non-mated pairs cannot measure "
            f"FAR {args.far}; the threshold is the strictest these photos support. "
            "Calibrate on more persons for a trustworthy value.",
            file=sys.stderr,
        )
    path = write_config_value("match_threshold", float(threshold["value"]))
    print(f"match_threshold = {threshold['value']} written to {path}", file=sys.stderr)
    return 0

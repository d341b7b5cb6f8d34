"""Administrative commands: migrations, re-index, cross-match, keys, the audit trail."""

from __future__ import annotations

import argparse
import json
import threading
from typing import Any

from facedb.cli.common import services
from facedb.config import get_settings
from facedb.domain import AuditAction, JobKind, JobState, MatchState, Role
from facedb.records import PairFilter
from facedb.trail.jobs import Job, run_job


def add_commands(commands: Any) -> None:
    """Register db, reindex, crossmatch, keys and audit."""
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
    reindex.add_argument(
        "--remove-age-axis",
        action="store_true",
        help="learn the age axis of the faces held (ages spanning childhood and adulthood) "
        "and remove it from every embedding and search, for cross-age search (after "
        "--re-embed when both are given)",
    )
    reindex.set_defaults(handler=_reindex)

    crossmatch = commands.add_parser(
        "crossmatch",
        help="match every face of the missing register against the found one (resumable)",
    )
    crossmatch.set_defaults(handler=_crossmatch)

    quality = commands.add_parser(
        "quality",
        help="measure the image quality of faces stored before it was measured (reads their "
        "photos again; resumable), then list whom to ask for another photo",
    )
    quality.set_defaults(handler=_quality)

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
    new_data_key = key_commands.add_parser(
        "new-data-key",
        help="put a new data key (photos, crops, embeddings sealed at rest) first in FILE; "
        "earlier keys stay on the lines below",
    )
    new_data_key.add_argument("file", help="the key file FACEDB_DATA_KEY_FILE names")
    new_data_key.set_defaults(handler=_new_data_key)
    rotate = key_commands.add_parser(
        "rotate-data-key",
        help="re-seal every photo, crop and embedding (and the index snapshot) under the "
        "first key of FACEDB_DATA_KEY_FILE; resumable, while the service runs",
    )
    rotate.set_defaults(handler=_rotate_data_key)

    audit = commands.add_parser(
        "audit", help="list recent audit entries: biometric actions and every write"
    )
    audit.add_argument("--limit", type=int, default=50)
    audit.add_argument("--action", choices=[a.value for a in AuditAction], default=None)
    audit.add_argument("--json", action="store_true")
    audit.set_defaults(handler=_audit)


def _new_data_key(args: argparse.Namespace) -> int:
    from pathlib import Path

    from facedb.store.seal import write_new_key

    path = Path(args.file).expanduser()
    key = write_new_key(path)
    print(f"data key {key} is now first in {path} (readable by its owner only); set "
          f"FACEDB_DATA_KEY_FILE={path}, restart the services, then run "
          "`facedb keys rotate-data-key` to re-seal what earlier keys sealed")  # fmt: skip
    return 0


def _rotate_data_key(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from facedb.index.local_home import reseal_snapshot
    from facedb.store.reseal import reseal
    from facedb.store.seal import read_keyring
    from facedb.store.unit import Store

    settings = get_settings()
    store = Store(settings.database_url, read_keyring(settings))
    try:
        store.require_migrated()
        with tqdm(unit="row", desc="re-seal") as bar:
            done = reseal(store, after_batch=lambda _, n: bar.update(n))
    finally:
        store.close()
    snapshot = reseal_snapshot(settings)
    assert store.keyring is not None
    print(f"sealed under data key {store.keyring.current_id}: "
          + ", ".join(f"{n} {column}" for column, n in done.items())
          + (f"; index snapshot {snapshot}" if snapshot else ""))  # fmt: skip
    return 0


def _db_upgrade(args: argparse.Namespace) -> int:
    from facedb.store.db import redacted, upgrade

    settings = get_settings()
    upgrade(settings.database_url, args.revision)
    print(f"database at {args.revision}: {redacted(settings.database_url)}")
    return 0


def _db_downgrade(args: argparse.Namespace) -> int:
    from facedb.store.db import downgrade

    downgrade(get_settings().database_url, args.revision)
    return 0


def _reindex(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    built = services(start=True, load_models=args.re_embed, background=True)
    params = {"re_embed": args.re_embed, "remove_age_axis": args.remove_age_axis}
    job = Job(kind=JobKind.REINDEX, params=params)

    def work(job: Job) -> None:
        built.reindex.run(job, args.re_embed, args.remove_age_axis)

    worker = threading.Thread(target=run_job, args=(job, work))
    worker.start()
    with tqdm(unit="face") as bar:
        while worker.is_alive():
            worker.join(0.5)
            bar.total = job.total or None
            bar.n = job.done
            bar.refresh()
    served = built.index.model_version
    built.close()
    for error in job.errors:
        print(f"error: {error}")
    print(f"reindex {job.state}: {job.counts}")
    print(f"serving {built.analyzer.recipes.name_of(served)}: {served}")
    return 0 if job.state == JobState.SUCCEEDED else 1


def _crossmatch(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    built = services(start=True, background=True)
    job = Job(kind=JobKind.CROSSMATCH, params={})
    with tqdm(unit="face", desc="cross-match") as bar:
        run_job(job, lambda j: built.crossmatch.run_batch(j, progress=bar.update))
    _, pending = built.review.page(PairFilter(state=MatchState.PENDING), limit=1)
    built.close()
    for error in job.errors:
        print(f"error: {error}")
    written = job.counts.get("pairs_written", 0)
    summary = (
        f"{written} pairs written"
        if written
        else "0 pairs written: nothing changed since the last run"
    )
    print(f"crossmatch {job.state}: {job.counts.get('faces', 0)} faces matched, {summary}; "
          f"{pending} pairs wait for review")  # fmt: skip
    return 0 if job.state == JobState.SUCCEEDED else 1


def _quality(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    built = services(start=True)
    with tqdm(unit="face", desc="quality") as bar:
        measured = built.quality.measure_stored(bar.update)
    registers = built.quality.registers()
    built.close()
    print(f"{measured} faces measured now")
    for register in registers:
        name, below = register.register.value, len(register.below)
        print(f"{name}: {register.persons} persons, {register.measured} of {register.faces} "
              f"faces measured; {below} to ask for another photo")  # fmt: skip
        for person in register.below:
            print(f"  {person.name} ({person.external_ref or person.person_id}): {person.advice}")
    return 0


def _keys_create(args: argparse.Namespace) -> int:
    key, secret = services().keys.create(Role(args.role), args.name or args.role)
    print(f"created {key.role} key {key.id} ({key.name})")
    print(f"secret (shown once, store it now): {secret}")
    return 0


def _keys_list(args: argparse.Namespace) -> int:
    for key in services().keys.all():
        state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
        print(f"{key.id}  {key.role:9} {key.prefix}…  {state:18} {key.name}")
    return 0


def _keys_revoke(args: argparse.Namespace) -> int:
    services().keys.revoke(args.key_id)
    print(f"revoked {args.key_id}")
    return 0


def _audit(args: argparse.Namespace) -> int:
    action = AuditAction(args.action) if args.action else None
    entries = services().audit.recent(args.limit, action)
    if args.json:
        print(json.dumps([e.model_dump(mode="json") for e in entries], indent=2))
        return 0
    for e in entries:
        print(
            f"{e.at:%Y-%m-%d %H:%M:%S} {e.action:13} key={e.key_name or '-'} "
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
        elif "changed" in item:
            parts.append(
                f"{item['person_id']}: {', '.join(sorted(item['changed'])) or 'no change'}"
            )
        elif "files" in item:
            stored = sum(f["status"] == "stored" for f in item["files"])
            parts.append(f"{item['person_id']}: {stored} of {len(item['files'])} photos stored")
        elif "job_id" in item:
            parts.append(", ".join(f"{k} {v}" for k, v in item.items() if k != "job_id"))
        elif "key_id" in item:
            parts.append(f"key {item['key_id']} ({item.get('name')})")
        elif "photo_id" in item:
            parts.append(f"photo {item['photo_id']} of {item['person_id']}")
        elif "person_id" in item and "score" not in item:
            parts.append(f"person {item['person_id']}")
        elif "candidates" in item:
            best = item["candidates"][0] if item["candidates"] else None
            parts.append(f"top {best['person_id']} {best['score']:.3f}" if best else "no candidate")
        else:
            parts.append(f"{item.get('person_id')} score {item.get('score', 0):.3f}")
    return "; ".join(parts) or "-"

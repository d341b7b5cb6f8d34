"""Where an import reads from: a manifest in a folder, or an archive `facedb export` wrote.

A manifest names its photos by paths relative to its folder (or to a root the operator
gives). Every path is resolved, symbolic links followed, and must stay inside that folder:
``../``, an absolute path or a link pointing out is refused before anything is opened, so
a manifest cannot read (or tell whether there is) a file elsewhere on the host.

An archive is read in place, member by member, never extracted: it is refused whole when
it holds more members, or more bytes once inflated, than an import may; a member larger
than it declares, or than a photo may be, is refused as it is read.
"""

from __future__ import annotations

import io
import posixpath
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Protocol

from facedb.errors import FileUnreadable, ImageTooLarge, InvalidInput, PathOutsideImport
from facedb.services.uploads import Upload

MANIFEST = "manifest.jsonl"  # the manifest of an archive `facedb export` wrote
MAX_MEMBERS = 1_000_000  # members of one archive
MAX_ARCHIVE_BYTES = 256 * 1024**3  # an archive's members inflated, in all
MAX_TEXT_BYTES = 1024**3  # a manifest or decisions file inside an archive


class ImportSource(Protocol):
    """An import's manifest and the files it names."""

    name: str  # the manifest's suffix tells its format (.csv, .jsonl)

    def manifest(self) -> IO[str]:
        """Return the manifest, opened as text."""
        ...

    def read(self, path: str, max_bytes: int) -> bytes:
        """Return a named file's bytes; PathOutsideImport, FileUnreadable or ImageTooLarge."""
        ...

    def sidecar(self, name: str) -> bytes | None:
        """Return a file beside the manifest (an export's decisions), None when absent."""
        ...


class FolderSource:
    """A manifest file; its paths are relative to its folder and must resolve inside
    ``root`` (default: that folder)."""

    def __init__(self, manifest: Path, root: Path | None = None) -> None:
        self.path = manifest
        self.name = manifest.name
        self.folder = manifest.resolve().parent
        self.root = root.resolve() if root is not None else self.folder
        if not self.folder.is_relative_to(self.root):
            raise InvalidInput(f"{manifest} lies outside the import root {self.root}")

    def manifest(self) -> IO[str]:
        encoding = "utf-8-sig" if self.name.lower().endswith(".csv") else "utf-8"
        return self.path.open(newline="", encoding=encoding)

    def read(self, path: str, max_bytes: int) -> bytes:
        target = (self.folder / path).resolve()
        if not target.is_relative_to(self.root):
            raise PathOutsideImport(
                f"{path!r} leads outside the import folder {self.root}: give paths inside it "
                "(no '..' out of it, no absolute path, no link that points out)"
            )
        try:
            with target.open("rb") as handle:
                data = handle.read(max_bytes + 1)
        except OSError as exc:
            raise FileUnreadable(f"cannot read {path}: {exc.strerror or exc}") from None
        return Upload(path, io.BytesIO(data)).read(max_bytes)  # too large, empty: refused

    def sidecar(self, name: str) -> bytes | None:
        beside = self.folder / name
        return beside.read_bytes() if beside.is_file() else None


class ZipSource:
    """An archive `facedb export` wrote, read in place."""

    def __init__(self, archive: Path) -> None:
        self.name = MANIFEST
        try:
            self._zip = zipfile.ZipFile(archive)
        except (zipfile.BadZipFile, OSError) as exc:
            raise InvalidInput(f"{archive} is not a zip file: {exc}") from None
        members = self._zip.infolist()
        inflated = sum(m.file_size for m in members)
        if len(members) > MAX_MEMBERS or inflated > MAX_ARCHIVE_BYTES:
            self._zip.close()
            raise InvalidInput(
                f"{archive} holds {len(members)} members, {inflated} bytes inflated: an import "
                f"takes at most {MAX_MEMBERS} members and {MAX_ARCHIVE_BYTES // 1024**3} GiB; "
                "split the export"
            )
        self._members = {m.filename: m for m in members}
        if MANIFEST not in self._members:
            self._zip.close()
            raise InvalidInput(
                f"{archive} holds no {MANIFEST}; it was not written by facedb export"
            )

    def manifest(self) -> IO[str]:
        return io.TextIOWrapper(io.BytesIO(self._text(MANIFEST)), encoding="utf-8", newline="")

    def read(self, path: str, max_bytes: int) -> bytes:
        name = posixpath.normpath(path.replace("\\", "/"))
        if path.startswith(("/", "\\")) or name.startswith("../") or name == "..":
            raise PathOutsideImport(
                f"{path!r} leads outside the archive: give the member's path inside it"
            )
        member = self._members.get(name)
        if member is None or member.is_dir():
            raise FileUnreadable(f"cannot read {path}: the archive holds no such file")
        if member.file_size > max_bytes:  # refused before a byte is inflated
            raise ImageTooLarge(f"{path} is larger than {max_bytes} bytes")
        return Upload(path, io.BytesIO(self._member(member, max_bytes))).read(max_bytes)

    def sidecar(self, name: str) -> bytes | None:
        return self._text(name) if name in self._members else None

    def close(self) -> None:
        self._zip.close()

    def _text(self, name: str) -> bytes:
        member = self._members[name]
        if member.file_size > MAX_TEXT_BYTES:
            raise InvalidInput(f"{name} in the archive is larger than {MAX_TEXT_BYTES} bytes")
        data = self._member(member, MAX_TEXT_BYTES)
        if len(data) > MAX_TEXT_BYTES:
            raise InvalidInput(f"{name} in the archive is larger than it declares")
        return data

    def _member(self, member: zipfile.ZipInfo, limit: int) -> bytes:
        try:
            with self._zip.open(member) as handle:
                return handle.read(limit + 1)  # never more than the cap, whatever it declares
        except (zipfile.BadZipFile, OSError, RuntimeError) as exc:
            raise FileUnreadable(f"cannot read {member.filename} from the archive: {exc}") from None


@contextmanager
def opened(manifest: Path, root: Path | None = None) -> Iterator[ImportSource]:
    """Yield the source a manifest path names: an archive (``.zip``) or a manifest file."""
    if not manifest.is_file():
        raise InvalidInput(f"{manifest} is not a file; give the manifest's path")
    if manifest.suffix.lower() != ".zip":
        yield FolderSource(manifest, root)
        return
    archive = ZipSource(manifest)
    try:
        yield archive
    finally:
        archive.close()

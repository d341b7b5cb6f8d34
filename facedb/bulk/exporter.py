"""Export persons or a whole register (`facedb export`): to hand a case to another agency,
or to back up one register. The folder (or zip) is what `facedb import` reads back.

Layout:
- ``manifest.jsonl``: one row per photo (a row without ``path`` for a person without
  photos), with the person's id, record and the photo's date;
- ``photos/<person id>/<photo id>.<ext>``: the photos as they were uploaded;
- ``faces.jsonl``: each face found (box, landmarks, estimated age and gender);
- ``matches.jsonl``: the decided cross-match candidates that involve an exported person,
  the two photos named by their SHA-256 so an import can attach them again;
- ``case-<person id>.html`` (an export of named persons): each named person's case report
  (``facedb.bulk.report``); the persons they are linked to or paired with are exported too,
  so the archive holds both sides of every pair it lists.
"""

from __future__ import annotations

import json
import os
import time
import zipfile
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from facedb.bulk.report import CaseFile, render
from facedb.bulk.source import MANIFEST
from facedb.casework.checks import described
from facedb.casework.disclosure import FULL, Disclosure
from facedb.domain import AuditAction, PairOrder, Register
from facedb.errors import InvalidInput
from facedb.records import Caller, FaceRecord, PairFilter, PairRecord, PersonRecord, PhotoRecord
from facedb.services.quality import QualityService
from facedb.store.unit import Store, Unit
from facedb.trail.audit import LOCAL, AuditService

FACES = "faces.jsonl"
MATCHES = "matches.jsonl"
AUDIT_SCAN = 10_000  # the newest audit entries searched for a case report's extract
CASE_PAIRS = 500  # at most this many of a person's pairs in a case report
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}


@dataclass(frozen=True)
class ExportSummary:
    persons: int
    photos: int
    faces: int
    matches: int
    target: Path


class _Writer(Protocol):
    def put(self, name: str, data: bytes) -> None: ...

    def close(self) -> None: ...


# An export holds children's photos in plaintext: only its owner may read it, whatever the
# umask (folders 0700, files 0600), as the data key file is kept.
FOLDER_MODE, FILE_MODE = 0o700, 0o600


def _private_file(path: Path) -> BinaryIO:
    """Return a new file open for writing that only its owner may read."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    os.fchmod(descriptor, FILE_MODE)  # os.open's mode passes through the umask
    return os.fdopen(descriptor, "wb")


def _private_folder(path: Path) -> None:
    path.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    path.chmod(FOLDER_MODE)  # mkdir's mode passes through the umask


class _Folder:
    def __init__(self, root: Path) -> None:
        if root.exists() and any(root.iterdir()):
            raise InvalidInput(f"{root} is not empty; export into a new folder")
        _private_folder(root)
        self.root = root

    def put(self, name: str, data: bytes) -> None:
        path = self.root / name
        missing = [f for f in path.relative_to(self.root).parents if not (self.root / f).exists()]
        for folder in reversed(missing):  # photos/, then photos/<person id>/
            _private_folder(self.root / folder)
        with _private_file(path) as handle:
            handle.write(data)

    def close(self) -> None:
        pass


class _Zip:
    def __init__(self, path: Path) -> None:
        if path.exists():
            raise InvalidInput(f"{path} exists; export into a new file")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.archive = zipfile.ZipFile(_private_file(path), "w", compression=zipfile.ZIP_STORED)

    def put(self, name: str, data: bytes) -> None:
        self.archive.writestr(name, data)

    def close(self) -> None:
        self.archive.close()


@dataclass(frozen=True)
class Exporter:
    store: Store
    audit: AuditService
    quality: QualityService

    def select(self, person_ids: list[str], register: Register | None, everyone: bool) -> list[str]:
        """Return the ids to export: those named with the persons they are linked to or
        paired with, a register's persons, or every person."""
        if sum((bool(person_ids), register is not None, everyone)) != 1:
            raise InvalidInput("export names persons, or one register, or everyone")
        with self.store.unit() as unit:
            if person_ids:
                chosen = list(dict.fromkeys(person_ids))
                for person_id in person_ids:
                    person = unit.persons.get(person_id)  # NotFound names a wrong id
                    if person.linked_person_id:
                        chosen.append(person.linked_person_id)
                    for pair in self._pairs(unit, person_id):
                        chosen += [s.person_id for s in (pair.missing, pair.found) if s.person]
                return list(dict.fromkeys(chosen))
            return unit.persons.ids(register.statuses if register is not None else None)

    def report_for(self, person_id: str, caller: Caller) -> str:
        """Return one person's case report for a caller (audited as an export: the photos
        leave the service inside it)."""
        with self.audit.audited(AuditAction.EXPORT, caller) as trail:
            page = self.case_report(person_id, Disclosure.for_caller(caller))
            trail.results = [{"report": person_id, "persons": [person_id]}]
        return page

    def case_report(self, person_id: str, disclosure: Disclosure = FULL) -> str:
        """Return one person's case report (HTML, self-contained), showing what
        ``disclosure`` allows."""
        with self.store.unit() as unit:
            person = unit.persons.get(person_id)
            linked = unit.persons.get(person.linked_person_id) if person.linked_person_id else None
            photos = sorted(unit.photos.of_person(person_id), key=_by_date)
            pairs = self._pairs(unit, person_id)
            others = {s.face_id for p in pairs for s in (p.missing, p.found)
                      if s.person_id != person_id and s.face_id is not None}  # fmt: skip
            case = CaseFile(
                person,
                linked,
                [(photo, unit.photos.content(photo.id)[0]) for photo in photos],
                pairs,
                unit.notes.of_person(person_id),
                [e for e in unit.audit.recent(AUDIT_SCAN) if person_id in json.dumps(e.results)]
                if disclosure.audit
                else None,
                {face_id: unit.photos.crop(face_id) for face_id in sorted(others)},
                self.quality.of_person(person_id),
            )
        return render(case)

    @staticmethod
    def _pairs(unit: Unit, person_id: str) -> list[PairRecord]:
        where = PairFilter(person_id=person_id)
        return described(unit, unit.pairs.page(where, PairOrder.SCORE, CASE_PAIRS, 0)[0])

    def export(
        self,
        person_ids: list[str],
        target: Path,
        caller: Caller = LOCAL,
        reports: list[str] | None = None,
    ) -> ExportSummary:
        """Write the persons, their photos, faces and decided candidates to a folder or zip,
        and a case report for each person in ``reports``."""
        start = time.perf_counter()
        writer: _Writer = _Zip(target) if target.suffix.lower() == ".zip" else _Folder(target)
        manifest: list[str] = []
        faces_out: list[str] = []
        photos = faces = 0
        try:
            for person_id in person_ids:
                with self.store.unit() as unit:
                    person = unit.persons.get(person_id)
                    record = _person_row(person)
                    stored = unit.photos.of_person(person_id)
                    if not stored:
                        manifest.append(_line(record))
                    for photo in stored:
                        ext = EXTENSIONS.get(photo.media_type, "img")
                        path = f"photos/{person.id}/{photo.id}.{ext}"
                        writer.put(path, unit.photos.content(photo.id)[0])
                        manifest.append(_line({**record, "path": path, "taken_at": photo.taken_at}))
                        photos += 1
                        for face in photo.faces:
                            faces_out.append(_line(_face_row(path, photo, face)))
                            faces += 1
            with self.store.unit() as unit:
                matches = unit.archive.decided_involving(person_ids)
            writer.put(MANIFEST, "".join(manifest).encode())
            writer.put(FACES, "".join(faces_out).encode())
            writer.put(MATCHES, "".join(_line(m) for m in matches).encode())
            for person_id in reports or []:
                page = self.case_report(person_id, Disclosure.for_caller(caller))
                writer.put(f"case-{person_id}.html", page.encode())
        finally:
            writer.close()
        self.audit.record(
            AuditAction.EXPORT,
            caller,
            faces,
            [
                {
                    "target": str(target),
                    "persons": person_ids,
                    "photos": photos,
                    "matches": len(matches),
                }
            ],
            time.perf_counter() - start,
        )
        return ExportSummary(len(person_ids), photos, faces, len(matches), target)


def _by_date(photo: PhotoRecord) -> tuple[bool, date]:
    """Dated photos by date, then the undated ones by upload."""
    return photo.taken_at is None, photo.taken_at or photo.created_at.date()


def _person_row(person: PersonRecord) -> dict[str, Any]:
    return {
        "person_id": person.id,
        "external_ref": person.external_ref,
        "name": person.name,
        "status": person.status,
        "gender": person.gender,
        "birth_date": person.birth_date,
        "birth_year": person.birth_year,
        "linked_person_id": person.linked_person_id,
        "attributes": person.attributes,
    }


def _face_row(path: str, photo: PhotoRecord, face: FaceRecord) -> dict[str, Any]:
    return {
        "path": path,
        "photo_sha256": photo.sha256,
        "box": face.box.as_dict(),
        "landmarks": face.landmarks,
        "confidence": face.confidence,
        "age": face.age,
        "gender": face.gender,
        "gender_probability": face.gender_probability,
    }


def _line(item: dict[str, Any]) -> str:
    return json.dumps(item, default=_jsonable, ensure_ascii=False) + "\n"


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"cannot write {type(value).__name__} to a manifest")

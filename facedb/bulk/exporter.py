"""Export persons or a whole register (`facedb export`): to hand a case to another agency,
or to back up one register. The folder (or zip) is what `facedb import` reads back.

Layout:
- ``manifest.jsonl``: one row per photo (a row without ``path`` for a person without
  photos), with the person's id, record and the photo's date;
- ``photos/<person id>/<photo id>.<ext>``: the photos as they were uploaded;
- ``faces.jsonl``: each face found (box, landmarks, estimated age and gender);
- ``matches.jsonl``: the decided cross-match candidates that involve an exported person,
  the two photos named by their SHA-256 so an import can attach them again.
"""

from __future__ import annotations

import json
import time
import zipfile
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

from facedb.domain import AuditAction, Register
from facedb.errors import InvalidInput
from facedb.records import Caller, FaceRecord, PersonRecord, PhotoRecord
from facedb.services.audit import LOCAL, AuditService
from facedb.store.unit import Store

MANIFEST = "manifest.jsonl"
FACES = "faces.jsonl"
MATCHES = "matches.jsonl"
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


class _Folder:
    def __init__(self, root: Path) -> None:
        if root.exists() and any(root.iterdir()):
            raise InvalidInput(f"{root} is not empty; export into a new folder")
        root.mkdir(parents=True, exist_ok=True)
        self.root = root

    def put(self, name: str, data: bytes) -> None:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def close(self) -> None:
        pass


class _Zip:
    def __init__(self, path: Path) -> None:
        if path.exists():
            raise InvalidInput(f"{path} exists; export into a new file")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.archive = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED)

    def put(self, name: str, data: bytes) -> None:
        self.archive.writestr(name, data)

    def close(self) -> None:
        self.archive.close()


@dataclass(frozen=True)
class Exporter:
    store: Store
    audit: AuditService

    def select(self, person_ids: list[str], register: Register | None, everyone: bool) -> list[str]:
        """Return the ids to export: those named, a register's persons, or every person."""
        if sum((bool(person_ids), register is not None, everyone)) != 1:
            raise InvalidInput("export names persons, or one register, or everyone")
        with self.store.unit() as unit:
            if person_ids:
                for person_id in person_ids:
                    unit.persons.get(person_id)  # NotFound names a wrong id
                return list(dict.fromkeys(person_ids))
            return unit.persons.ids(register.statuses if register is not None else None)

    def export(self, person_ids: list[str], target: Path, caller: Caller = LOCAL) -> ExportSummary:
        """Write the persons, their photos, faces and decided candidates to a folder or zip."""
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
                matches = unit.pairs.decided_involving(person_ids)
            writer.put(MANIFEST, "".join(manifest).encode())
            writer.put(FACES, "".join(faces_out).encode())
            writer.put(MATCHES, "".join(_line(m) for m in matches).encode())
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

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
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import or_, select

from facedb.domain import AuditAction, MatchState, PersonStatus, Register
from facedb.errors import InvalidInput
from facedb.service import audit
from facedb.service.audit import LOCAL, Caller
from facedb.service.context import FaceDB
from facedb.store import repository as repo
from facedb.store.db import transaction
from facedb.store.models import MatchCandidate, Person, Photo

MANIFEST = "manifest.jsonl"
FACES = "faces.jsonl"
MATCHES = "matches.jsonl"
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}
MATCH_COLUMNS = (
    "state", "score", "rank", "missing_person_id", "found_person_id", "missing_taken_at",
    "found_taken_at", "missing_age", "found_age", "missing_age_source", "found_age_source",
    "years_between", "created_at", "raised_at", "decided_by", "decided_at", "note",
    "statuses_before",
)  # fmt: skip


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


def select_persons(
    db: FaceDB, person_ids: list[str], register: Register | None, everyone: bool
) -> list[str]:
    """Return the ids to export: those named, a register's persons, or every person."""
    if sum((bool(person_ids), register is not None, everyone)) != 1:
        raise InvalidInput("export names persons, or one register, or everyone")
    with transaction(db.sessions) as session:
        if person_ids:
            for person_id in person_ids:
                repo.get_person(session, person_id)  # NotFound names a wrong id
            return list(dict.fromkeys(person_ids))
        query = select(Person.id).order_by(Person.created_at, Person.id)
        if register is not None:
            query = query.where(Person.status.in_([str(s) for s in register.statuses]))
        return list(session.execute(query).scalars())


def export(
    db: FaceDB, person_ids: list[str], target: Path, caller: Caller = LOCAL
) -> ExportSummary:
    """Write the persons, their photos, faces and decided candidates to a folder or zip."""
    start = time.perf_counter()
    writer: _Writer = _Zip(target) if target.suffix.lower() == ".zip" else _Folder(target)
    manifest: list[str] = []
    faces_out: list[str] = []
    photos = faces = 0
    try:
        for person_id in person_ids:
            with transaction(db.sessions) as session:
                person = repo.get_person(session, person_id)
                record = _person_row(person)
                stored = repo.photos_of(session, person_id)
                if not stored:
                    manifest.append(_line(record))
                for photo, photo_faces in stored:
                    path = (
                        f"photos/{person.id}/{photo.id}.{EXTENSIONS.get(photo.media_type, 'img')}"
                    )
                    writer.put(path, _content(session, photo))
                    manifest.append(_line({**record, "path": path, "taken_at": photo.taken_at}))
                    photos += 1
                    for face in photo_faces:
                        faces_out.append(_line(_face_row(path, photo, face)))
                        faces += 1
        matches = _decided_matches(db, set(person_ids))
        writer.put(MANIFEST, "".join(manifest).encode())
        writer.put(FACES, "".join(faces_out).encode())
        writer.put(MATCHES, "".join(_line(m) for m in matches).encode())
    finally:
        writer.close()
    audit.record(
        db,
        AuditAction.EXPORT,
        caller,
        faces,
        [{"target": str(target), "persons": person_ids, "photos": photos, "matches": len(matches)}],
        time.perf_counter() - start,
    )
    return ExportSummary(len(person_ids), photos, faces, len(matches), target)


def _person_row(person: Person) -> dict[str, Any]:
    return {
        "person_id": person.id,
        "external_ref": person.external_ref,
        "name": person.name,
        "status": person.status,
        "gender": person.gender,
        "birth_date": person.birth_date,
        "birth_year": person.birth_year,
        "linked_person_id": person.linked_person_id,
        "attributes": dict(person.attributes or {}),
    }


def _face_row(path: str, photo: Photo, face: Any) -> dict[str, Any]:
    return {
        "path": path,
        "photo_sha256": photo.sha256,
        "box": {"x": face.box_x, "y": face.box_y, "w": face.box_w, "h": face.box_h},
        "landmarks": face.landmarks,
        "confidence": face.confidence,
        "age": face.age,
        "gender": face.gender,
        "gender_probability": face.gender_probability,
    }


def _content(session: Any, photo: Photo) -> bytes:
    return bytes(session.execute(select(Photo.content).where(Photo.id == photo.id)).scalar_one())


def _decided_matches(db: FaceDB, person_ids: set[str]) -> list[dict[str, Any]]:
    """Return decided candidates with a side among ``person_ids``, photos named by SHA-256."""
    out: dict[int, dict[str, Any]] = {}
    with transaction(db.sessions) as session:
        ids = list(person_ids)
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            rows = session.execute(
                select(MatchCandidate).where(
                    MatchCandidate.state != MatchState.PENDING.value,
                    or_(
                        MatchCandidate.missing_person_id.in_(chunk),
                        MatchCandidate.found_person_id.in_(chunk),
                    ),
                )
            ).scalars()
            for row in rows:
                if row.id in out:
                    continue
                item = {c: getattr(row, c) for c in MATCH_COLUMNS}
                for side in ("missing", "found"):
                    photo = session.get(Photo, getattr(row, f"{side}_photo_id"))
                    item[f"{side}_photo_sha256"] = photo.sha256 if photo else None
                out[row.id] = item
    return [out[k] for k in sorted(out)]


def _line(item: dict[str, Any]) -> str:
    return json.dumps(item, default=_jsonable, ensure_ascii=False) + "\n"


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, PersonStatus):
        return value.value
    raise TypeError(f"cannot write {type(value).__name__} to a manifest")

"""Decided pairs as `facedb export` writes them and `facedb import` restores them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from facedb.domain import MatchState
from facedb.store.models import MatchCandidate, Photo
from facedb.store.pairs import involving
from facedb.store.rows import chunks

# What `facedb export` writes of a decided pair (photos are named by SHA-256 beside them).
EXPORTED_COLUMNS = (
    "state",
    "score",
    "missing_person_id",
    "found_person_id",
    "missing_taken_at",
    "found_taken_at",
    "missing_age",
    "found_age",
    "missing_age_source",
    "found_age_source",
    "years_between",
    "created_at",
    "raised_at",
    "decided_by",
    "decided_at",
    "note",
    "reason",
    "statuses_before",
)


def _parsed(key: str, value: Any) -> Any:
    """Return an exported value as its column takes it (dates and times come as text)."""
    if not value or not key.endswith("_at"):
        return value
    return date.fromisoformat(value) if key.endswith("taken_at") else datetime.fromisoformat(value)


class PairArchive:
    """Decided pairs, exported with each side's photo named by its SHA-256, and restored."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def decided_involving(self, person_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Return decided pairs with a side among ``person_ids`` as export items: the
        exported columns, each side's photo named by its SHA-256."""
        out: dict[int, dict[str, Any]] = {}
        for chunk in chunks(person_ids, 1000):
            rows = self._session.execute(
                select(MatchCandidate).where(
                    MatchCandidate.state != MatchState.PENDING, involving(chunk)
                )
            ).scalars()
            for row in rows:
                if row.id not in out:
                    item = {c: getattr(row, c) for c in EXPORTED_COLUMNS}
                    item["missing_photo_sha256"] = self._sha(row.missing_photo_id)
                    item["found_photo_sha256"] = self._sha(row.found_photo_id)
                    out[row.id] = item
        return [out[k] for k in sorted(out)]

    def decided_between(self, missing_person_id: str, found_person_id: str) -> bool:
        """Return whether these two persons' pair is decided here (confirmed or rejected)."""
        state = self._session.execute(
            select(MatchCandidate.state).where(
                MatchCandidate.missing_person_id == missing_person_id,
                MatchCandidate.found_person_id == found_person_id,
            )
        ).scalar_one_or_none()
        return state is not None and MatchState(state).decided

    def restore(
        self, item: dict[str, Any], missing: tuple[str, int], found: tuple[str, int]
    ) -> int:
        """Write an exported decided pair over its pending twin (or as a new pair); return
        its id. ``missing`` and ``found`` are the (photo id, face id) of each side here."""
        row = self._session.execute(
            select(MatchCandidate).where(
                MatchCandidate.missing_person_id == item["missing_person_id"],
                MatchCandidate.found_person_id == item["found_person_id"],
            )
        ).scalar_one_or_none()
        if row is None:
            row = MatchCandidate()
            self._session.add(row)
        for key in EXPORTED_COLUMNS:
            setattr(row, key, _parsed(key, item.get(key)))
        row.missing_photo_id, row.missing_face_id = missing
        row.found_photo_id, row.found_face_id = found
        row.superseded_by = None
        self._session.flush()
        return int(row.id)

    def _sha(self, photo_id: str | None) -> str | None:
        if photo_id is None:  # an erased side
            return None
        return self._session.execute(
            select(Photo.sha256).where(Photo.id == photo_id)
        ).scalar_one_or_none()

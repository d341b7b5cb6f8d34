"""The persons list and the review queue as CSV, as the console filters them: for a
spreadsheet, every cell defused (``facedb.bulk.cells``), each download audited as an export.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

from facedb.ages import age_on, completed_years
from facedb.bulk.cells import SafeWriter
from facedb.casework.checks import described
from facedb.domain import AuditAction, PairOrder
from facedb.records import Caller, PairFilter, PairRecord, PairSide, PersonFilter, PersonRecord
from facedb.services.quality import RegisterQuality, ToAsk
from facedb.store.unit import Store, Unit
from facedb.trail.audit import AuditService

T = TypeVar("T")

PAGE = 1000
MAX_ROWS = 100_000  # a register's worth; a larger table is `facedb export`'s work

PERSON_COLUMNS = ("id", "name", "case_number", "status", "gender", "birth_date", "birth_year",
                  "age_today", "linked_person_id", "details", "created_at")  # fmt: skip
PAIR_COLUMNS = ("pair", "state", "score", "rank", "evidence", "warnings", "age_check",
                "age_reason", "years_between", "missing_id", "missing_name", "missing_case",
                "missing_photo_date", "found_id", "found_name", "found_case",
                "found_photo_date", "decided_by", "decided_at", "note",
                "superseded_by")  # fmt: skip


@dataclass(frozen=True)
class Tables:
    store: Store
    audit: AuditService

    def persons(self, where: PersonFilter, caller: Caller) -> str:
        """Return the persons this filter lists, as CSV (audited)."""
        with self.audit.audited(AuditAction.EXPORT, caller) as trail:
            rows = [_person(p) for p in self._persons(where)]
            trail.results = [_audited("persons", len(rows), where)]
        return _csv(PERSON_COLUMNS, rows)

    def pairs(self, where: PairFilter, order: PairOrder, caller: Caller) -> str:
        """Return the pairs this filter lists, in this order, as CSV (audited)."""
        with self.audit.audited(AuditAction.EXPORT, caller) as trail:
            rows = [_pair(p) for p in self._pairs(where, order)]
            trail.results = [_audited("pairs", len(rows), where)]
        return _csv(PAIR_COLUMNS, rows)

    def to_ask(self, registers: list[RegisterQuality], caller: Caller) -> str:
        """Return the persons whose best photo is too low to search by, as CSV (audited)."""
        with self.audit.audited(AuditAction.EXPORT, caller) as trail:
            rows = [_asked(r, a) for r in registers for a in r.below]
            trail.results = [{"table": "quality", "rows": len(rows),
                              "registers": [r.register.value for r in registers]}]  # fmt: skip
        return _csv(TO_ASK_COLUMNS, rows)

    def _persons(self, where: PersonFilter) -> Iterator[PersonRecord]:
        return self._every(lambda unit, offset: unit.persons.page(where, PAGE, offset))

    def _pairs(self, where: PairFilter, order: PairOrder) -> Iterator[PairRecord]:
        def page(unit: Unit, offset: int) -> tuple[list[PairRecord], int]:
            pairs, total = unit.pairs.page(where, order, PAGE, offset)
            return described(unit, pairs), total

        return self._every(page)

    def _every(self, page: Callable[[Unit, int], tuple[list[T], int]]) -> Iterator[T]:
        """Every item of a listing, PAGE at a time (a unit each), MAX_ROWS at most."""
        for offset in range(0, MAX_ROWS, PAGE):
            with self.store.unit() as unit:
                items, total = page(unit, offset)
            yield from items
            if offset + PAGE >= total:
                return


def _audited(table: str, rows: int, where: PersonFilter | PairFilter) -> dict[str, Any]:
    return {
        "table": table,
        "rows": rows,
        "filter": where.model_dump(exclude_none=True, mode="json"),
    }


def _csv(columns: Iterable[str], rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = SafeWriter(out, columns)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _person(p: PersonRecord) -> dict[str, Any]:
    age = age_on(date.today(), p.birth_date, p.birth_year)
    return {"id": p.id, "name": p.name, "case_number": p.external_ref or "",
            "status": p.status.value, "gender": p.gender.value if p.gender else "",
            "birth_date": p.birth_date or "", "birth_year": p.birth_year or "",
            "age_today": completed_years(age) if age is not None else "",
            "linked_person_id": p.linked_person_id or "",
            "details": json.dumps(p.attributes, ensure_ascii=False) if p.attributes else "",
            "created_at": p.created_at.isoformat()}  # fmt: skip


def _side(side: PairSide, name: str) -> dict[str, Any]:
    person = side.person
    return {f"{name}_id": side.person_id, f"{name}_name": person.name if person else "(erased)",
            f"{name}_case": (person.external_ref or "") if person else "",
            f"{name}_photo_date": side.taken_at or ""}  # fmt: skip


def _pair(p: PairRecord) -> dict[str, Any]:
    check = p.age_check
    reasons = [check.reason] if check else []
    reasons += [f"photo in doubt: {s.photo_warning.reason}"
                for s in (p.missing, p.found) if s.photo_warning]  # fmt: skip
    decision = p.decision
    return {"pair": p.id, "state": p.state.value, "score": p.score, "rank": p.rank,
            "evidence": p.evidence, "warnings": p.warnings,
            "age_check": check.verdict.value if check else "",
            "age_reason": "; ".join(reasons),
            "years_between": p.years_between if p.years_between is not None else "",
            **_side(p.missing, "missing"), **_side(p.found, "found"),
            "decided_by": (decision.by or "") if decision else "",
            "decided_at": decision.at.isoformat() if decision else "",
            "note": (decision.note or "") if decision else "",
            "superseded_by": p.superseded_by or ""}  # fmt: skip


TO_ASK_COLUMNS = ("register", "person_id", "name", "case_number", "status", "best_score",
                  "limiting", "advice")  # fmt: skip


def _asked(register: RegisterQuality, person: ToAsk) -> dict[str, Any]:
    best = person.best
    return {"register": register.register.value, "person_id": person.person_id,
            "name": person.name, "case_number": person.external_ref or "",
            "status": person.status.value, "best_score": best.score if best else "",
            "limiting": best.limiting.value if best else "", "advice": person.advice}  # fmt: skip

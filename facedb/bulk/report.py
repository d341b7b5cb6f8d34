"""A case as one HTML page: the record, the photos over time, the candidate pairs with their
decisions, the case notes and an extract of the audit trail.

The page is self-contained (its photos are embedded, its styles inline, nothing is fetched),
so it opens offline in any browser and prints on A4: one section after another, photos kept
whole across pages. It is written by `facedb export --person` beside the export's files.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape

from facedb.ages import completed_years
from facedb.domain import AgeVerdict, detail_label
from facedb.records import AuditRecord, NoteRecord, PairRecord, PersonRecord, PhotoRecord
from facedb.services.quality import PersonQuality

STYLE = """
body { font: 11pt/1.4 "DejaVu Sans", Arial, sans-serif; color: #1b1f24; margin: 2em; }
h1 { font-size: 18pt; margin: 0 0 .2em; } h2 { font-size: 13pt; margin: 1.4em 0 .4em;
  border-bottom: 1px solid #c9d1d9; } .muted { color: #57606a; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .1em 1em; }
dt { font-weight: bold; }
dd { margin: 0; } .photos { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; width: 45mm; break-inside: avoid; } figure img { width: 45mm; height: auto; }
figcaption { font-size: 9pt; } img.face { width: 20mm; height: 20mm; }
table { border-collapse: collapse; width: 100%; font-size: 9.5pt; }
th, td { text-align: left; border-bottom: 1px solid #d0d7de; padding: .25em .4em;
  vertical-align: top; }
tr { break-inside: avoid; } .note { white-space: pre-wrap; border-left: 3px solid #c9d1d9;
  padding-left: .6em; margin: .4em 0; break-inside: avoid; }
.warning { color: #9a3412; }
@page { size: A4; margin: 15mm; } @media print { body { margin: 0; } }
"""


AGE_VERDICTS = {
    AgeVerdict.CONSISTENT: "age fits",
    AgeVerdict.UNLIKELY: "age unlikely",
    AgeVerdict.IMPOSSIBLE: "age impossible",
}


@dataclass(frozen=True)
class CaseFile:
    """What the page shows of one person."""

    person: PersonRecord
    linked: PersonRecord | None
    photos: list[tuple[PhotoRecord, bytes]]  # date order
    pairs: list[PairRecord]
    notes: list[NoteRecord]
    audit: list[AuditRecord] | None  # the entries naming the person, newest first; None:
    # the reader may not see the audit (``facedb.casework.disclosure``)
    faces: dict[int, bytes] = field(default_factory=dict)  # the other records' faces (JPEG)
    quality: PersonQuality | None = None  # the best face's, and the warning when too low


def render(case: CaseFile, made_at: datetime | None = None) -> str:
    """Return the case's page."""
    person = case.person
    made = (made_at or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    title = f"Case file: {person.name}" + (
        f" ({person.external_ref})" if person.external_ref else ""
    )
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{escape(title)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1><p class='muted'>FaceDB case report, made {made}. "
        "Candidate pairs are leads for people to check, not identifications.</p>",
        _record(person, case.linked, case.quality),
        _photos(case.photos),
        _pairs(person, case.pairs, case.faces),
        _notes(case.notes),
        _audit(case.audit) if case.audit is not None else "",
        "</body></html>",
    ]
    return "\n".join(parts)


def _record(person: PersonRecord, linked: PersonRecord | None,
            quality: PersonQuality | None) -> str:  # fmt: skip
    born = person.birth_date or person.birth_year or "unknown"
    rows = [("Case number", person.external_ref or "—"), ("Status", person.status.value),
            ("Gender", person.gender.value if person.gender else "not recorded"),
            ("Born", born), ("Record created", person.created_at.date())]  # fmt: skip
    if linked is not None:
        rows.append(("Linked to", f"{linked.name} (case {linked.external_ref or '—'})"))
    elif person.linked_erased_at is not None:
        rows.append(("Linked to", f"a record erased on {person.linked_erased_at.date()}"))
    for key, value in person.attributes.items():  # the case details, each on its row
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        rows.append((detail_label(key), shown))
    if quality is not None and quality.best is not None:
        rows.append(("Best photo quality", f"{quality.best.score}/100, {quality.best.reason}"))
    cells = "".join(f"<dt>{escape(k)}</dt><dd>{escape(str(v))}</dd>" for k, v in rows)
    warning = (
        f"<p class='warning'><b>{escape(quality.warning)}</b></p>"
        if quality is not None and quality.warning
        else ""
    )
    return f"<h2>Record</h2><dl>{cells}</dl>{warning}"


def _photos(photos: list[tuple[PhotoRecord, bytes]]) -> str:
    if not photos:
        return "<h2>Photos</h2><p class='muted'>No photo.</p>"
    figures = []
    for photo, content in photos:
        data = base64.b64encode(content).decode()
        face = photo.faces[0] if photo.faces else None
        if photo.age_at_photo is not None:
            age = f"age {completed_years(photo.age_at_photo)} (from the birth date)"
        elif face is not None and face.age is not None:
            age = f"age about {completed_years(face.age)} (estimated from the face)"
        else:
            age = "age unknown"
        flag = " · <b>age does not fit the date</b>" if photo.age_conflict else ""
        if face is not None and face.quality is not None:
            flag += f" · quality {face.quality.score}/100, {escape(face.quality.reason)}"
        figures.append(
            f"<figure><img alt='photo {escape(photo.filename or photo.id)}' "
            f"src='data:{escape(photo.media_type)};base64,{data}'><figcaption>"
            f"{escape(str(photo.taken_at or 'undated'))} · {age}{flag}<br>"
            f"<span class='muted'>{escape(photo.filename or '')}</span></figcaption></figure>"
        )
    return f"<h2>Photos over time</h2><div class='photos'>{''.join(figures)}</div>"


def _pairs(person: PersonRecord, pairs: list[PairRecord], faces: dict[int, bytes]) -> str:
    if not pairs:
        return "<h2>Candidate pairs</h2><p class='muted'>No candidate pair.</p>"
    rows = []
    for pair in pairs:
        other = pair.found if pair.missing.person_id == person.id else pair.missing
        who = other.person
        name = f"{who.name} (case {who.external_ref or '—'})" if who else "an erased record"
        crop = faces.get(other.face_id) if other.face_id is not None else None
        face = (
            f"<img class='face' alt='face of {escape(name)}' "
            f"src='data:image/jpeg;base64,{base64.b64encode(crop).decode()}'>"
            if crop
            else "<span class='muted'>no face</span>"
        )
        years = f"{pair.years_between:.1f}" if pair.years_between is not None else "—"
        check = (
            f"<b>{AGE_VERDICTS[pair.age_check.verdict]}</b>: {escape(pair.age_check.reason)}"
            if pair.age_check
            else "no age check (no birth data)"
        )
        warned = [s.photo_warning.reason for s in (pair.missing, pair.found) if s.photo_warning]
        check += "".join(f"<br>photo in doubt: {escape(w)}" for w in warned)
        decided = (
            f"{pair.state.value} by {pair.decision.by or '—'} on {pair.decision.at:%Y-%m-%d}"
            + (f": “{pair.decision.note}”" if pair.decision.note else "")
            if pair.decision
            else pair.state.value
        )
        rows.append(
            f"<tr><td>{pair.id}</td><td>{face}</td><td>{escape(name)}</td>"
            f"<td>{pair.score:.3f}</td><td>{years}</td><td>{check}</td>"
            f"<td>{escape(decided)}</td></tr>"
        )
    head = ("<tr><th>pair</th><th>face</th><th>other record</th><th>score</th>"
            "<th>years between</th><th>age check</th><th>decision</th></tr>")  # fmt: skip
    return f"<h2>Candidate pairs</h2><table>{head}{''.join(rows)}</table>"


def _notes(notes: list[NoteRecord]) -> str:
    if not notes:
        return "<h2>Case notes</h2><p class='muted'>No note.</p>"
    items = "".join(
        f"<div class='note'><span class='muted'>{n.created_at:%Y-%m-%d %H:%M} · "
        f"{escape(n.author or 'unknown')}</span><br>{escape(n.text)}</div>"
        for n in notes
    )
    return f"<h2>Case notes</h2>{items}"


def _audit(entries: list[AuditRecord]) -> str:
    if not entries:
        return "<h2>Audit extract</h2><p class='muted'>No entry names this person.</p>"
    rows = "".join(
        f"<tr><td>{e.at:%Y-%m-%d %H:%M}</td><td>{escape(e.action.value)}</td>"
        f"<td>{escape(e.key_name or '—')}</td><td>{escape(_outcome(e))}</td></tr>"
        for e in entries
    )
    head = "<tr><th>when</th><th>action</th><th>by</th><th>outcome</th></tr>"
    return f"<h2>Audit extract</h2><table>{head}{rows}</table>"


def _outcome(entry: AuditRecord) -> str:
    refused = [r["error"] for r in entry.results if isinstance(r, dict) and "error" in r]
    return f"refused ({', '.join(refused)})" if refused else "done"

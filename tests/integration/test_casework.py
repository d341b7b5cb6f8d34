"""Casework: the missing register cross-matched against the found one, on real photos."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from facedb.domain import AgeSource, JobKind, MatchState, PersonStatus
from facedb.pipeline.analyzer import FaceAnalyzer
from facedb.sample_data import photos
from facedb.service import crossmatch, review
from facedb.service.audit import LOCAL
from facedb.service.context import FaceDB
from facedb.service.enrollment import enroll
from facedb.service.jobs import Job
from facedb.service.persons import create_person, delete_person, get_person
from facedb.service.uploads import Upload
from tests.factories import model_db

pytestmark = pytest.mark.models


@pytest.fixture
def db(url: str, tmp_path: Path, analyzer: FaceAnalyzer) -> Iterator[FaceDB]:
    instance = model_db(url, tmp_path, analyzer)
    yield instance
    instance.close()


def add(
    db: FaceDB,
    name: str,
    status: PersonStatus,
    files: list[Path],
    taken_at: date | None = None,
    **fields: object,
) -> str:
    person = create_person(db, {"name": name, "status": status, **fields})
    uploads = [Upload(p.name, io.BytesIO(p.read_bytes()), taken_at) for p in files]
    report = enroll(db, person.id, uploads)
    assert report.count("stored") == len(files), [r.error for r in report.results]
    return person.id


def pairs(db: FaceDB, state: MatchState | None = None) -> dict[tuple[str, str], float]:
    items, _ = review.list_matches(db, state=state, limit=500)
    return {
        (m.missing.person.id, m.found.person.id): m.score
        for m in items
        if m.missing.person and m.found.person
    }  # type: ignore[union-attr]


@pytest.fixture
def registers(db: FaceDB, celebrity: Path) -> dict[str, str]:
    """Three missing persons enrolled from old photos, then found persons photographed now."""
    train, val = photos(celebrity / "train"), photos(celebrity / "val")
    ids = {
        "madonna": add(db, "Madonna (missing)", PersonStatus.MISSING, train["madonna"][:2],
                       date(1985, 6, 1), birth_date=date(1958, 8, 16)),
        "elton": add(db, "Elton (missing)", PersonStatus.MISSING, train["elton_john"][:2]),
        "ben": add(db, "Ben (missing)", PersonStatus.MISSING, train["ben_afflek"][:2]),
    }  # fmt: skip
    ids["found_madonna"] = add(db, "Unidentified woman", PersonStatus.UNIDENTIFIED,
                               val["madonna"][:1], date(2020, 3, 1))  # fmt: skip
    ids["found_elton"] = add(db, "Patient 17", PersonStatus.FOUND, val["elton_john"][:1])
    ids["closed"] = add(db, "Closed case", PersonStatus.CLOSED, val["ben_afflek"][:1])
    return ids


def test_a_found_photo_raises_a_pending_candidate_with_age_context(
    db: FaceDB, registers: dict[str, str]
) -> None:
    items, total = review.list_matches(db, state=MatchState.PENDING, limit=100)
    by_pair = {(m.missing.person.id, m.found.person.id): m for m in items}  # type: ignore[union-attr]
    hit = by_pair[(registers["madonna"], registers["found_madonna"])]
    assert hit.score >= db.settings.candidate_threshold and hit.rank == 1
    assert hit.missing.age_source is AgeSource.DECLARED
    assert hit.missing.age_at_photo == pytest.approx(26.8, abs=0.1)
    assert hit.found.age_source is AgeSource.ESTIMATED and hit.found.age_at_photo
    assert hit.years_between == pytest.approx(34.8, abs=0.1)
    assert (registers["elton"], registers["found_elton"]) in by_pair
    people = {p for pair in by_pair for p in pair}
    assert registers["closed"] not in people  # closed takes part in no cross-matching
    assert all(m.missing.person.status == "missing" for m in items)  # type: ignore[union-attr]
    assert crossmatch.pending(db) == 0
    assert total == len(by_pair)  # one row per pair of persons


def test_batch_gives_the_on_enroll_pairs_and_leaves_decisions_alone(
    db: FaceDB, registers: dict[str, str]
) -> None:
    on_enroll = pairs(db)
    match_id = next(
        m.id for m in review.list_matches(db, limit=100)[0]
        if m.found.person and m.found.person.id == registers["found_madonna"]
        and m.missing.person and m.missing.person.id == registers["madonna"]
    )  # fmt: skip
    decided = review.decide(db, LOCAL, match_id, MatchState.CONFIRMED, "same scar")
    assert decided.decision and decided.decision.note == "same scar"
    for person in ("madonna", "found_madonna"):
        record = get_person(db, registers[person])
        assert record.status == PersonStatus.CLOSED
    assert get_person(db, registers["madonna"]).linked_person_id == registers["found_madonna"]

    with db.engine.begin() as connection:  # forget every undecided pair, then re-derive them
        connection.execute(sa.text("DELETE FROM match_candidates WHERE state = 'pending'"))
    for _ in range(2):  # idempotent: the second run adds nothing
        job = Job(kind=JobKind.CROSSMATCH, params={})
        crossmatch.run_batch(db, job)
    after = pairs(db)
    confirmed = (registers["madonna"], registers["found_madonna"])
    # Confirmation closed both persons: their other pairs are no longer derived.
    expected = {k: v for k, v in on_enroll.items() if not set(k) & set(confirmed)}
    assert {k: v for k, v in after.items() if k != confirmed} == pytest.approx(expected)
    assert review.get_match(db, match_id).state is MatchState.CONFIRMED

    reversed_ = review.decide(db, LOCAL, match_id, MatchState.REJECTED, "twins")
    assert reversed_.state is MatchState.REJECTED
    assert get_person(db, registers["madonna"]).status == PersonStatus.MISSING
    assert get_person(db, registers["found_madonna"]).status == PersonStatus.UNIDENTIFIED


def test_a_crash_between_enrollment_and_matching_loses_no_candidate(
    db: FaceDB, celebrity: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    train, val = photos(celebrity / "train"), photos(celebrity / "val")
    missing = add(db, "Jerry (missing)", PersonStatus.MISSING, train["jerry_seinfeld"][:2])

    def dies(*_: object) -> None:
        raise RuntimeError("the process died here")

    monkeypatch.setattr(crossmatch, "match", dies)
    found = add(db, "Jerry (found)", PersonStatus.FOUND, val["jerry_seinfeld"][:1])
    assert crossmatch.pending(db) == 1  # enrolled and acknowledged, not yet matched
    assert (missing, found) not in pairs(db)
    monkeypatch.undo()
    assert crossmatch.sweep(db) == 1
    assert (missing, found) in pairs(db) and crossmatch.pending(db) == 0


def test_deleting_a_person_drops_pending_pairs_and_keeps_decided_ones(
    db: FaceDB, registers: dict[str, str]
) -> None:
    items, _ = review.list_matches(db, person_id=registers["elton"], limit=100)
    assert items
    kept = items[0].id
    review.decide(db, LOCAL, kept, MatchState.REJECTED, None)
    delete_person(db, registers["elton"])
    left, _ = review.list_matches(db, person_id=registers["elton"], limit=100)
    assert [m.id for m in left] == [kept]
    history = left[0]
    assert history.missing.person is None and history.missing.face_id is None
    assert history.decision is not None and history.state is MatchState.REJECTED


def test_a_crashed_batch_resumes_after_the_last_batch_written(
    db: FaceDB, registers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(crossmatch, "QUERY_BATCH", 2)
    real_record = crossmatch.record
    queried: list[list[int]] = []
    die_on_call = [2]

    def recording(db_: FaceDB, hits: list[crossmatch.Hit], matched: list) -> int:  # type: ignore[type-arg]
        queried.append([f.face_id for f in matched])
        if len(queried) in die_on_call:
            raise RuntimeError("killed mid-run")
        return real_record(db_, hits, matched)

    monkeypatch.setattr(crossmatch, "record", recording)
    with pytest.raises(RuntimeError):
        crossmatch.run_batch(db, Job(kind=JobKind.CROSSMATCH, params={}))
    first_batch, dead_batch = queried
    queried.clear()
    die_on_call.clear()
    crossmatch.run_batch(db, Job(kind=JobKind.CROSSMATCH, params={}))
    resumed = [i for batch in queried for i in batch]
    assert resumed[: len(dead_batch)] == dead_batch  # the batch that died is redone
    assert not set(first_batch) & set(resumed)  # the batch written is not

"""Casework: the missing register cross-matched against the found one.

The first test runs on real photos with the real models; the rules after it (batch against
on-enroll pairs, crashes, deletion) run on the deterministic fake analyzer, both databases.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from facedb.casework import batch
from facedb.casework.crossmatch import CrossMatcher
from facedb.domain import AgeSource, InconclusiveReason, JobKind, MatchState, PersonStatus
from facedb.errors import InvalidInput
from facedb.models.sample_data import photos
from facedb.pipeline.analyzer import FaceAnalyzer
from facedb.records import PairFilter
from facedb.trail.audit import LOCAL
from facedb.trail.jobs import Job
from facedb.wiring import Services
from tests.factories import enroll_bytes, make_settings, model_services, started
from tests.fakes import fake_photo


def add(
    db: Services,
    name: str,
    status: PersonStatus,
    files: list[bytes],
    taken_at: date | None = None,
    **fields: object,
) -> str:
    person = db.persons.create({"name": name, "status": status, **fields})
    report = enroll_bytes(db, person.id, *files, taken_at=taken_at)
    assert report.stored == len(files), [r.error for r in report.results]
    return person.id


def pairs(db: Services, state: MatchState | None = None) -> dict[tuple[str, str], float]:
    items, _ = db.review.page(PairFilter(state=state), limit=500)
    return {
        (m.missing.person.id, m.found.person.id): m.score
        for m in items
        if m.missing.person and m.found.person
    }


@pytest.mark.models
def test_a_found_photo_raises_a_pending_candidate_with_age_context(
    url: str, tmp_path: Path, analyzer: FaceAnalyzer, celebrity: Path
) -> None:
    db = model_services(url, tmp_path, analyzer)
    train, val = photos(celebrity / "train"), photos(celebrity / "val")
    read = lambda files: [p.read_bytes() for p in files]  # noqa: E731
    madonna = add(db, "Madonna (missing)", PersonStatus.MISSING, read(train["madonna"][:2]),
                  date(1985, 6, 1), birth_date=date(1958, 8, 16))  # fmt: skip
    elton = add(db, "Elton (missing)", PersonStatus.MISSING, read(train["elton_john"][:2]))
    add(db, "Ben (missing)", PersonStatus.MISSING, read(train["ben_afflek"][:2]))
    found_madonna = add(db, "Unidentified woman", PersonStatus.UNIDENTIFIED,
                        read(val["madonna"][:1]), date(2020, 3, 1))  # fmt: skip
    found_elton = add(db, "Patient 17", PersonStatus.FOUND, read(val["elton_john"][:1]))
    closed = add(db, "Closed case", PersonStatus.CLOSED, read(val["ben_afflek"][:1]))

    items, total = db.review.page(PairFilter(state=MatchState.PENDING), limit=100)
    by_pair = {(m.missing.person.id, m.found.person.id): m for m in items}  # type: ignore[union-attr]
    hit = by_pair[(madonna, found_madonna)]
    assert hit.score >= db.index.candidate_threshold and hit.rank == 1
    assert hit.missing.age_source is AgeSource.DECLARED
    assert hit.missing.age_at_photo == pytest.approx(26.8, abs=0.1)
    assert hit.found.age_source is AgeSource.ESTIMATED and hit.found.age_at_photo
    assert hit.years_between == pytest.approx(34.8, abs=0.1)
    assert (elton, found_elton) in by_pair
    people = {p for pair in by_pair for p in pair}
    assert closed not in people  # closed takes part in no cross-matching
    assert all(m.missing.person.status == "missing" for m in items)  # type: ignore[union-attr]
    assert db.crossmatch.pending() == 0
    assert total == len(by_pair)  # one row per pair of persons
    db.close()


# --- the rules, on the fake analyzer -------------------------------------------------------
@pytest.fixture
def db(url: str, tmp_path: Path) -> Iterator[Services]:
    instance = started(make_settings(tmp_path, url))
    yield instance
    instance.close()


@pytest.fixture
def registers(db: Services) -> dict[str, str]:
    """Three missing persons enrolled from old photos, then found persons photographed now."""
    ids = {
        "madonna": add(db, "Madonna (missing)", PersonStatus.MISSING,
                       [fake_photo(1, v, age=26) for v in (0, 1)], date(1985, 6, 1),
                       birth_date=date(1958, 8, 16)),
        "elton": add(db, "Elton (missing)", PersonStatus.MISSING,
                     [fake_photo(2, v) for v in (0, 1)]),
        "ben": add(db, "Ben (missing)", PersonStatus.MISSING, [fake_photo(3, v) for v in (0, 1)]),
    }  # fmt: skip
    ids["found_madonna"] = add(db, "Unidentified woman", PersonStatus.UNIDENTIFIED,
                               [fake_photo(1, 5, age=61)], date(2020, 3, 1))  # fmt: skip
    ids["found_elton"] = add(db, "Patient 17", PersonStatus.FOUND, [fake_photo(2, 5)])
    ids["closed"] = add(db, "Closed case", PersonStatus.CLOSED, [fake_photo(3, 5)])
    return ids


def test_batch_gives_the_on_enroll_pairs_and_leaves_decisions_alone(
    db: Services, registers: dict[str, str]
) -> None:
    on_enroll = pairs(db)
    assert (registers["madonna"], registers["found_madonna"]) in on_enroll
    match_id = next(
        m.id for m in db.review.page(limit=100)[0]
        if m.found.person and m.found.person.id == registers["found_madonna"]
        and m.missing.person and m.missing.person.id == registers["madonna"]
    )  # fmt: skip
    decided = db.review.decide(LOCAL, match_id, MatchState.CONFIRMED, "same scar")
    assert decided.decision and decided.decision.note == "same scar"
    for person in ("madonna", "found_madonna"):
        assert db.persons.get(registers[person]).status is PersonStatus.CLOSED
    assert db.persons.get(registers["madonna"]).linked_person_id == registers["found_madonna"]

    with db.store.engine.begin() as connection:  # forget every undecided pair, re-derive them
        connection.execute(sa.text("DELETE FROM match_candidates WHERE state = 'pending'"))
    for _ in range(2):  # idempotent: the second run adds nothing
        db.crossmatch.run_batch(Job(kind=JobKind.CROSSMATCH, params={}))
    after = pairs(db)
    confirmed = (registers["madonna"], registers["found_madonna"])
    # Confirmation closed both persons: their other pairs are no longer derived.
    expected = {k: v for k, v in on_enroll.items() if not set(k) & set(confirmed)}
    # Exact scores whichever path found them, stored to 5 decimals (the two paths sum the
    # same products in another order: the rounding may land one unit apart).
    assert {k: v for k, v in after.items() if k != confirmed} == pytest.approx(expected, abs=2e-5)
    assert db.review.get(match_id).state is MatchState.CONFIRMED

    reversed_ = db.review.decide(LOCAL, match_id, MatchState.REJECTED, "twins")
    assert reversed_.state is MatchState.REJECTED
    assert db.persons.get(registers["madonna"]).status is PersonStatus.MISSING
    assert db.persons.get(registers["found_madonna"]).status is PersonStatus.UNIDENTIFIED


def test_a_crash_between_enrollment_and_matching_loses_no_candidate(
    db: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = add(db, "Jerry (missing)", PersonStatus.MISSING, [fake_photo(4, 0), fake_photo(4, 1)])

    def dies(*_: object) -> None:
        raise RuntimeError("the process died here")

    monkeypatch.setattr(CrossMatcher, "match", dies)
    found = add(db, "Jerry (found)", PersonStatus.FOUND, [fake_photo(4, 2)])
    assert db.crossmatch.pending() == 1  # enrolled and acknowledged, not yet matched
    assert (missing, found) not in pairs(db)
    monkeypatch.undo()
    assert db.crossmatch.sweep() == 1
    assert (missing, found) in pairs(db) and db.crossmatch.pending() == 0


def test_deleting_a_person_drops_pending_pairs_and_keeps_decided_ones(
    db: Services, registers: dict[str, str]
) -> None:
    items, _ = db.review.page(PairFilter(person_id=registers["elton"]), limit=100)
    assert items
    kept = items[0].id
    db.review.decide(LOCAL, kept, MatchState.REJECTED, None)
    db.persons.delete(registers["elton"])
    left, _ = db.review.page(PairFilter(person_id=registers["elton"]), limit=100)
    assert [m.id for m in left] == [kept]
    history = left[0]
    assert history.missing.person is None and history.missing.face_id is None
    assert history.decision is not None and history.state is MatchState.REJECTED


def test_a_crashed_batch_resumes_after_the_last_batch_written(
    db: Services, registers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch, "BATCH_QUERIES", 2)
    real_record = CrossMatcher.record
    queried: list[list[int]] = []
    die_on_call = [2]

    def recording(self: CrossMatcher, found: list, matched: list, after: Any = None) -> int:  # type: ignore[type-arg]
        queried.append([f.face_id for f in matched])
        if len(queried) in die_on_call:
            raise RuntimeError("killed mid-run")
        return real_record(self, found, matched, after)

    monkeypatch.setattr(CrossMatcher, "record", recording)
    with pytest.raises(RuntimeError):
        db.crossmatch.run_batch(Job(kind=JobKind.CROSSMATCH, params={}))
    first_batch, dead_batch = queried
    queried.clear()
    die_on_call.clear()
    db.crossmatch.run_batch(Job(kind=JobKind.CROSSMATCH, params={}))
    resumed = [i for batch in queried for i in batch]
    assert resumed[: len(dead_batch)] == dead_batch  # the batch that died is redone
    assert not set(first_batch) & set(resumed)  # the batch written is not


def test_an_inconclusive_pair_leaves_the_queue_until_either_person_gets_a_photo(
    db: Services, registers: dict[str, str]
) -> None:
    elton, found = registers["elton"], registers["found_elton"]
    pair = next(m.id for m in db.review.page(PairFilter(person_id=found), limit=100)[0]
                if m.missing.person and m.missing.person.id == elton)  # fmt: skip
    with pytest.raises(InvalidInput, match="say why it is inconclusive"):
        db.review.decide(LOCAL, pair, MatchState.INCONCLUSIVE, "blurred")
    with pytest.raises(InvalidInput, match="with an `inconclusive` decision only"):
        db.review.decide(LOCAL, pair, MatchState.CONFIRMED, None, InconclusiveReason.BETTER_PHOTO)
    assert db.review.get(pair).state is MatchState.PENDING  # refused: nothing changed

    held = db.review.decide(
        LOCAL, pair, MatchState.INCONCLUSIVE, "the found photo is blurred",
        InconclusiveReason.BETTER_PHOTO,
    )  # fmt: skip
    assert held.state is MatchState.INCONCLUSIVE
    assert held.decision and held.decision.reason is InconclusiveReason.BETTER_PHOTO
    assert (elton, found) not in pairs(db, MatchState.PENDING)
    assert (elton, found) in pairs(db, MatchState.INCONCLUSIVE)
    db.crossmatch.run_batch(Job(kind=JobKind.CROSSMATCH, params={}))  # a re-run keeps it out
    assert db.review.get(pair).state is MatchState.INCONCLUSIVE
    enroll_bytes(db, registers["ben"], fake_photo(3, 7))  # someone else's photo: still out
    assert db.review.get(pair).state is MatchState.INCONCLUSIVE

    enroll_bytes(db, found, fake_photo(2, 6))  # the better photo arrives
    back = db.review.get(pair)
    assert back.state is MatchState.PENDING and (elton, found) in pairs(db, MatchState.PENDING)
    assert back.decision and back.decision.reason is InconclusiveReason.BETTER_PHOTO  # kept

    confirmed = db.review.decide(LOCAL, pair, MatchState.CONFIRMED, "same ear")
    assert db.persons.get(elton).linked_person_id == found and confirmed.decision
    assert confirmed.decision.reason is None
    again = db.review.decide(
        LOCAL, pair, MatchState.INCONCLUSIVE, None, InconclusiveReason.DNA_OR_DENTAL
    )
    assert again.state is MatchState.INCONCLUSIVE  # a confirmation undone, as a rejection does
    assert db.persons.get(elton).linked_person_id is None
    assert db.persons.get(elton).status is PersonStatus.MISSING

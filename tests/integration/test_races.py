"""Casework writes that race, repeated: two reviewers confirming two pairs of one person at
the same moment, and a confirmation racing the erasure of one of its persons; and an upload
whose answer an outage cut off, sent again. Each trial
starts both at once (a barrier) and checks the database after it, not only the answers:
one link per person, no link to an erased record, no error but the domain's own.
Both databases; 50 trials each."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from facedb.domain import AuditAction, MatchState, PersonStatus, UploadStatus
from facedb.errors import AlreadyLinked, Conflict, Contention, DatabaseUnavailable, NotFound
from facedb.records import PairFilter
from facedb.trail.audit import LOCAL, AuditService
from facedb.wiring import Services
from tests.factories import enroll_bytes, make_settings, started
from tests.fakes import fake_photo

pytestmark = pytest.mark.slow  # make test-fast leaves it out

TRIALS = 50


@pytest.fixture
def db(url: str, tmp_path: Path) -> Iterator[Services]:
    instance = started(make_settings(tmp_path, url))
    yield instance
    instance.close()


def person(db: Services, name: str, status: PersonStatus, identity: int, variant: int) -> str:
    created = db.persons.create({"name": name, "status": status})
    report = enroll_bytes(db, created.id, fake_photo(identity, variant))
    assert report.stored == 1, [r.error for r in report.results]
    return created.id


def pair_id(db: Services, missing: str, found: str) -> int:
    items, _ = db.review.page(PairFilter(person_id=missing), limit=100)
    return next(p.id for p in items if p.found.person_id == found)


def at_once(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls in threads released together; return each one's result or exception."""
    start = threading.Barrier(len(calls))
    outcomes: list[Any] = [None] * len(calls)

    def run(n: int) -> None:
        start.wait()
        try:
            outcomes[n] = calls[n]()
        except Exception as exc:  # the test sorts them out
            outcomes[n] = exc

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes


def linked(db: Services) -> dict[str, tuple[str | None, str]]:
    with db.store.engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT id, linked_person_id, status FROM persons"))
        return {r[0]: (r[1], r[2]) for r in rows}


def test_two_reviewers_confirming_one_person_at_once_link_it_once(db: Services) -> None:
    for trial in range(TRIALS):
        identity = 100 + trial
        m = person(db, f"Missing {trial}", PersonStatus.MISSING, identity, 0)
        f1 = person(db, f"Found {trial}a", PersonStatus.FOUND, identity, 1)
        f2 = person(db, f"Found {trial}b", PersonStatus.FOUND, identity, 2)
        first, second = pair_id(db, m, f1), pair_id(db, m, f2)
        outcomes = at_once(
            partial(db.review.decide, LOCAL, first, MatchState.CONFIRMED, None),
            partial(db.review.decide, LOCAL, second, MatchState.CONFIRMED, None),
        )
        refused = [o for o in outcomes if isinstance(o, Exception)]
        assert len(refused) == 1 and isinstance(refused[0], AlreadyLinked), (trial, outcomes)
        states = {p: db.review.get(p).state for p in (first, second)}
        assert sorted(states.values()) == [MatchState.CONFIRMED, MatchState.SUPERSEDED], trial
        winner = f1 if states[first] is MatchState.CONFIRMED else f2
        loser = f2 if winner == f1 else f1
        rows = linked(db)
        assert rows[m] == (winner, PersonStatus.CLOSED.value), trial
        assert rows[winner] == (m, PersonStatus.CLOSED.value), trial
        assert rows[loser] == (None, PersonStatus.FOUND.value), trial
        # Reversing the winner reopens everything and leaves nobody closed.
        db.review.decide(LOCAL, first if winner == f1 else second, MatchState.REJECTED, None)
        rows = linked(db)
        assert {rows[p] for p in (m, f1, f2)} == {
            (None, PersonStatus.MISSING.value),
            (None, PersonStatus.FOUND.value),
        }, trial


def test_a_confirmation_racing_an_erasure_leaves_no_dead_link(db: Services) -> None:
    for trial in range(TRIALS):
        identity = 160 + trial
        m = person(db, f"Missing {trial}", PersonStatus.MISSING, identity, 0)
        f = person(db, f"Found {trial}", PersonStatus.FOUND, identity, 1)
        pair = pair_id(db, m, f)
        decided, erased = at_once(
            partial(db.review.decide, LOCAL, pair, MatchState.CONFIRMED, None),
            partial(db.persons.delete, f),
        )
        assert not isinstance(erased, Exception), (trial, erased)
        if isinstance(decided, Exception):  # the erasure came first: nothing to confirm
            assert isinstance(decided, NotFound | Conflict), (trial, decided)
        rows = linked(db)
        assert f not in rows
        survivor = db.persons.get(m)
        assert survivor.linked_person_id is None, trial
        confirmed = not isinstance(decided, Exception)
        assert (survivor.linked_erased_at is not None) == confirmed, trial
        assert (survivor.status is PersonStatus.CLOSED) == confirmed, trial
        assert db.exporter.case_report(m)  # the survivor's report opens


@pytest.mark.postgres
@pytest.mark.parametrize("url", ["postgres"], indirect=True)
def test_the_loser_of_a_deadlock_is_told_to_look_again_without_database_internals(
    db: Services,
) -> None:
    a = db.persons.create({"name": "A"}).id
    b = db.persons.create({"name": "B"}).id
    halfway = threading.Barrier(2)

    def cross(first: str, second: str) -> None:
        with db.store.unit() as unit:
            unit.persons.update(first, {"name": "one"})
            halfway.wait()
            unit.persons.update(second, {"name": "two"})

    outcomes = at_once(partial(cross, a, b), partial(cross, b, a))
    lost = [o for o in outcomes if isinstance(o, Exception)]
    assert len(lost) == 1 and isinstance(lost[0], Contention), outcomes
    assert "DETAIL" not in lost[0].message and "deadlock" not in lost[0].message


def test_an_upload_whose_answer_was_lost_answers_stored_when_sent_again(
    db: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The photo committed, then the database went away before the upload's audited answer
    (a 503). Sent again, the same bytes answer as the first success would have: stored,
    the same photo; a third time, they are a duplicate."""
    someone = db.persons.create({"name": "Retried"}).id
    photo = fake_photo(220, 0)

    def outage(*args: Any, **kwargs: Any) -> None:
        raise DatabaseUnavailable("the database is unreachable; try again shortly")

    with monkeypatch.context() as patched:
        patched.setattr(AuditService, "record", outage)
        with pytest.raises(DatabaseUnavailable):
            enroll_bytes(db, someone, photo)
    (stored,) = db.enrollment.photos_of(someone)  # committed, never answered

    again = enroll_bytes(db, someone, photo).results[0]
    assert again.status is UploadStatus.STORED and again.photo is not None
    assert again.photo.id == stored.id
    assert len(db.enrollment.photos_of(someone)) == 1
    third = enroll_bytes(db, someone, photo).results[0]
    assert third.status is UploadStatus.DUPLICATE and third.photo is not None
    assert third.photo.id == stored.id
    uploads = db.audit.recent(limit=10, action=AuditAction.PHOTO_UPLOAD)
    assert [e.results[0]["files"][0]["status"] for e in uploads] == ["duplicate", "stored"]

"""The evidence SQL against a reference written plainly: each pair's score less the mean of its
two persons' best other candidates (their next-best where the pair is their best; ``floor``
where they have no other), settled for every pair or for some persons' pairs, on both
databases. As faiss checks its fast paths against brute force."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from facedb.casework.checks import UNCHECKED
from facedb.store.db import upgrade
from facedb.store.models import PairSideColumns
from facedb.store.pair_writes import PairFields
from facedb.store.unit import Store

FLOOR = 0.2


def reference(pairs: dict[int, tuple[str, str, float]]) -> dict[int, float]:
    """Each pair's evidence, pair by pair (ties between scores go to the lower id)."""
    out = {}
    for pair_id, (missing, found, score) in pairs.items():
        others = []
        for person, side in ((missing, 0), (found, 1)):
            rivals = sorted(((-s, i) for i, (*who, s) in pairs.items() if who[side] == person))
            best = [i for _, i in rivals]
            rest = [pairs[i][2] for i in best if i != pair_id]
            if best[0] == pair_id:
                others.append(rest[0] if rest else FLOOR)
            else:
                others.append(pairs[best[0]][2])
        out[pair_id] = score - 0.5 * sum(others)
    return out


def side(person: str) -> PairSideColumns:
    return PairSideColumns(person, None, None, None, None, None)


def stored(store: Store) -> dict[int, tuple[str, str, float, float]]:
    with store.engine.connect() as connection:
        rows = connection.execute(sa.text(
            "SELECT id, missing_person_id, found_person_id, score, evidence FROM match_candidates"
        ))  # fmt: skip
        return {int(r[0]): (r[1], r[2], float(r[3]), float(r[4])) for r in rows}


def test_the_evidence_sql_agrees_with_the_reference(url: str, tmp_path: Path) -> None:
    upgrade(url)
    store = Store(url)
    rng = np.random.default_rng(11)
    missing = [f"m{i}" for i in range(12)]
    found = [f"f{i}" for i in range(15)]
    chosen = {(m, f) for m in missing for f in found if rng.random() < 0.3}
    scores = np.round(rng.uniform(0.3, 0.9, len(chosen)), 2)  # rounded: ties happen
    now = datetime.now(UTC)
    pairs = [PairFields(float(s), side(m), side(f), None, UNCHECKED)
             for (m, f), s in zip(sorted(chosen), scores, strict=True)]  # fmt: skip
    with store.unit() as unit:
        assert unit.pairs.upsert(pairs, now, 0.0) == len(pairs)
        unit.pairs.settle(None, FLOOR)
    rows = stored(store)
    expected = reference({i: (m, f, s) for i, (m, f, s, _) in rows.items()})
    assert max(abs(rows[i][3] - expected[i]) for i in rows) < 1e-6

    # Some persons' pairs raised: settling only theirs gives what settling all would.
    raised = [PairFields(0.95, side(m), side(f), None, UNCHECKED)
              for m, f in sorted(chosen)[:3]]  # fmt: skip
    with store.unit() as unit:
        assert unit.pairs.upsert(raised, now, 0.0) == 3
        touched = sorted({p for r in raised for p in r.key})
        unit.pairs.settle(touched, FLOOR)
    rows = stored(store)
    expected = reference({i: (m, f, s) for i, (m, f, s, _) in rows.items()})
    assert max(abs(rows[i][3] - expected[i]) for i in rows) < 1e-6
    store.close()


@pytest.mark.parametrize("url", ["sqlite"], indirect=True)
def test_a_person_with_one_candidate_is_measured_against_the_floor(url: str) -> None:
    upgrade(url)
    store = Store(url)
    with store.unit() as unit:
        unit.pairs.upsert([PairFields(0.7, side("m"), side("f"), None, UNCHECKED)],
                          datetime.now(UTC), 0.0)  # fmt: skip
        unit.pairs.settle(None, FLOOR)
    ((_, _, score, evidence),) = stored(store).values()
    assert evidence == pytest.approx(score - FLOOR)
    store.close()

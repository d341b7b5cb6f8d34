"""The review queue at the size of a register: lag-dev's 300 missing children among
thousands of found strangers, the pairs a reviewer reads to meet 80% of the true links.

Run: .venv/bin/python -m bench.queue_scale [--devsets DIR] [--lag DIR] [--strangers DIR]
     [--sizes N ...] [--recipe NAME] [--cache DIR] [--write]

The faces are the service's own embeddings of the photos (``bench.embeddings``, the cache
``bench.register_scale`` fills), written straight into a SQLite store with their estimated
ages (no pipeline runs here: 11k photos would take an hour of this CPU each run), joined by
the recipe served. Then the service's own parts run: the batch cross-match (`facedb
crossmatch`), the queue in evidence order (age checks from the estimated ages), and the age
axis as the service now treats it by default (``AgeAxisPolicy.consider``: learned from the
database's faces, the registers cross-matched again). Each lag-dev person's childhood photos
are one missing record; each adult photo is a found record, as is each of the first N
strangers (one fixed shuffle, the same as ``bench.register_scale``). A true link is a
missing record paired with a found record of the same person's adult photo; recall is the
share of those in the queue.
"""

from __future__ import annotations

import hashlib
import tempfile
import uuid
from pathlib import Path

import numpy as np

from bench.common import arguments, report, table
from bench.datasets import STRANGERS, add_devsets
from bench.embeddings import Embedded
from bench.registers import register_parts
from bench.serving import sqlite_services
from facedb.domain import AxisMode, JobKind, MatchState, PairOrder, PersonStatus
from facedb.pipeline.embed import MODEL_NAME
from facedb.pipeline.recipes import Recipe
from facedb.records import PairFilter
from facedb.store.embeddings import Embedded as Stored
from facedb.store.photos import NewFace, NewPhoto
from facedb.trail.jobs import Job
from facedb.wiring import Services

SECTION = "## Review queue at register scale ({recipe})"
SIZES = (1000, 5000, 11325)
SHARES = (0.5, 0.8)


def stored(recipe: Recipe, e: Embedded, rows: list[int]) -> np.ndarray:
    """The rows' embeddings as ``recipe`` stores them (its parts joined by its weights)."""
    parts = {"facenet": e.facenet, "dlib": e.dlib, "sface": e.sface}
    return recipe.joined([parts[str(p.network)][rows] for p in recipe.parts])


def enroll(db: Services, status: PersonStatus, name: str, vectors: np.ndarray,
           ages: np.ndarray) -> str:  # fmt: skip
    """One person with one photo and face per vector, stored as the service serves them."""
    person = db.persons.create({"name": name, "status": status}).id
    with db.store.unit() as unit:
        generation, _ = unit.generations.lock()
        version = Stored(generation, MODEL_NAME, db.index.model_version)
        for vector, age in zip(vectors, ages, strict=True):
            content = uuid.uuid4().bytes
            photo = NewPhoto(person, hashlib.sha256(content).hexdigest(), content,
                             "image/jpeg", 1, 1, None, None)  # fmt: skip
            estimate = None if np.isnan(age) else float(age)
            face = NewFace((0, 0, 1, 1), {}, 1.0, estimate, None, None, b"", vector)
            unit.photos.add(photo, [face], version)
    return person


def workload(db: Services, truth: set[tuple[str, str]]) -> list[str]:
    """Pending pairs, recall, pairs read to 50% / 80% of the true links (evidence order)."""
    items, total = db.review.page(PairFilter(state=MatchState.PENDING), PairOrder.EVIDENCE,
                                  10**7, 0)  # fmt: skip
    hits = np.array([(p.missing.person_id, p.found.person_id) in truth for p in items])
    found = np.cumsum(hits)
    reads = []
    for share in SHARES:
        reached = np.nonzero(found >= np.ceil(share * len(truth)))[0]
        reads.append(f"{int(reached[0]) + 1:,}" if len(reached) else "not reached")
    return [f"{total:,}", f"{hits.sum() / len(truth):.3f}", *reads]


def run(folder: Path, recipe_name: str, parts: dict[str, Embedded], lag_owner: dict[str, list[int]],
        size: int) -> tuple[list[list[str]], str]:  # fmt: skip
    """Fill one register, queue it without and then with the age axis; the rows and what
    the service said of the axis."""
    db = sqlite_services(folder, recipe=recipe_name, age_axis=AxisMode.AUTO)
    recipe = db.analyzer.recipes.of(db.index.model_version)
    young, adult, strangers = parts["young"], parts["adult"], parts["strangers"]
    truth: set[tuple[str, str]] = set()
    for person, (kids, grown) in enumerate(zip(lag_owner["young"], lag_owner["adult"], strict=True)):  # fmt: skip
        kids = [i for i in kids if not np.isnan(young.facenet[i, 0])]
        if not kids:
            continue
        missing = enroll(db, PersonStatus.MISSING, f"lag {person} (missing)",
                         stored(recipe, young, kids), young.age[kids])  # fmt: skip
        for i in grown:
            if not np.isnan(adult.facenet[i, 0]):
                found = enroll(db, PersonStatus.FOUND, f"lag {person} adult {i}",
                               stored(recipe, adult, [i]), adult.age[[i]])  # fmt: skip
                truth.add((missing, found))
    seen = [i for i in range(size) if not np.isnan(strangers.facenet[i, 0])]
    for i in seen:
        enroll(db, PersonStatus.FOUND, f"stranger {i}", stored(recipe, strangers, [i]),
               strangers.age[[i]])  # fmt: skip
    db.index.catch_up()
    db.crossmatch.run_batch(Job(kind=JobKind.CROSSMATCH, params={}))
    rows = [["age axis kept (before)", *workload(db, truth)]]
    axis = db.age_axis.consider()  # as served by default: learned, then matched again
    rows.append(["age axis removed as served, live queue", *workload(db, truth)])
    db.close()
    return rows, axis.reason


def main() -> None:
    parser = arguments(__doc__, sizes=list(SIZES))
    add_devsets(parser, lag=True, cache=True)
    parser.add_argument("--strangers", type=Path, default=STRANGERS)
    parser.add_argument("--recipe", default="", help="FACEDB_RECIPE (default: the default)")
    args = parser.parse_args()
    lag, _, parts = register_parts(args, None, max(args.sizes))
    persons = range(max(lag.young_owner) + 1)
    owners = {"young": [[i for i, o in enumerate(lag.young_owner) if o == p] for p in persons],
              "adult": [[i for i, o in enumerate(lag.adult_owner) if o == p] for p in persons]}  # fmt: skip
    rows, notes, name = [], [], args.recipe or "the default"
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            found, said = run(Path(tmp), args.recipe, parts, owners, size)
        rows += [[f"{size:,}", *row] for row in found]
        notes.append(f"- {size:,} strangers: {said}")
        print(rows[-2:], flush=True)
    lines = [SECTION.format(recipe=name), "",
             f"`python -m bench.queue_scale` (see its docstring): {len(persons)} lag-dev missing "
             "children, their adult photos and N UTKFace strangers found; 10 candidates per "
             "face, the recipe's floor; pairs read in evidence order.", "",
             *table(["strangers", "queue", "pending pairs", "recall", "pairs to 50%",
                     "pairs to 80%"], rows), "", "The age axis as the service said:", "", *notes]  # fmt: skip
    report("\n".join(lines) + "\n", SECTION.format(recipe=name), args.write)


if __name__ == "__main__":
    main()

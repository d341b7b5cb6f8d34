"""casework a unit can trust: superseded and impossible pairs, age checks, evidence order

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 12:00:00

Pairs: states `superseded` and `impossible`; the age check (verdict, expected and estimated
age), the gender flag, `warnings` and `evidence` (the queue's order) and `superseded_by`;
`rank` is computed when read; an erased person's side may lose its face and photo. Indexes
that no query used are dropped and one serves the queue. The batch run notes the register
it is in. Persons: `linked_erased_at`.
Photos: `age_conflict`. Existing pending pairs get their evidence here (FLOOR is the
candidate floor default as of this revision); their age check waits for the next raise.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATES = ("pending", "confirmed", "rejected", "superseded", "impossible")
OLD_STATES = ("pending", "confirmed", "rejected")
VERDICTS = ("consistent", "unlikely", "impossible")
DROPPED = ("state", "score", "missing_person_id", "created_at")
SIDE_COLUMNS = {"face_id": sa.BigInteger(), "photo_id": sa.String(36)}
FLOOR = 0.22
# The evidence of every pair, set-based (as PairRepository.settle as of this revision).
EVIDENCE = f"""
WITH sides AS (
  SELECT missing_person_id AS person, id, score FROM match_candidates
  UNION ALL
  SELECT found_person_id AS person, id, score FROM match_candidates
), ranked AS (
  SELECT person, id, score,
         row_number() OVER (PARTITION BY person ORDER BY score DESC, id) AS place
  FROM sides
), top2 AS (
  SELECT person,
         max(CASE WHEN place = 1 THEN id END) AS best_id,
         max(CASE WHEN place = 1 THEN score END) AS best,
         max(CASE WHEN place = 2 THEN score END) AS second
  FROM ranked WHERE place <= 2 GROUP BY person
), settled AS (
  SELECT mc.id AS id, mc.score - 0.5 * (
      (CASE WHEN tm.best_id = mc.id THEN coalesce(tm.second, {FLOOR}) ELSE tm.best END)
    + (CASE WHEN tf.best_id = mc.id THEN coalesce(tf.second, {FLOOR}) ELSE tf.best END)
  ) AS value
  FROM match_candidates mc
  JOIN top2 tm ON tm.person = mc.missing_person_id
  JOIN top2 tf ON tf.person = mc.found_person_id
)
UPDATE match_candidates SET evidence = settled.value FROM settled
WHERE settled.id = match_candidates.id
"""


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def upgrade() -> None:
    with op.batch_alter_table("persons") as batch:
        batch.add_column(sa.Column("linked_erased_at", sa.DateTime(timezone=True)))
    with op.batch_alter_table("photos") as batch:
        batch.add_column(
            sa.Column("age_conflict", sa.Boolean(), nullable=False, server_default="0")
        )
    with op.batch_alter_table(
        "match_candidates", table_kwargs={"sqlite_autoincrement": True}
    ) as batch:
        for column in DROPPED:
            batch.drop_index(f"ix_match_candidates_{column}")
        batch.drop_column("rank")
        batch.drop_constraint(op.f("ck_match_candidates_state"), type_="check")
        batch.create_check_constraint(op.f("ck_match_candidates_state"), f"state IN ({_in(STATES)})")
        batch.add_column(sa.Column("evidence", sa.Float(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("warnings", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("age_verdict", sa.String(16)))
        batch.create_check_constraint(
            op.f("ck_match_candidates_age_verdict"), f"age_verdict IN ({_in(VERDICTS)})"
        )
        batch.add_column(sa.Column("expected_age", sa.Float()))
        batch.add_column(sa.Column("estimated_age", sa.Float()))
        batch.add_column(
            sa.Column("gender_conflict", sa.Boolean(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("superseded_by", sa.BigInteger()))
        for side in ("missing", "found"):
            for name, kind in SIDE_COLUMNS.items():
                batch.alter_column(f"{side}_{name}", existing_type=kind, nullable=True)
        batch.create_index("ix_match_candidates_queue", ["state", "warnings", "evidence"])
    with op.batch_alter_table("crossmatch_runs") as batch:
        batch.add_column(
            sa.Column("register", sa.String(16), nullable=False, server_default="missing")
        )
        batch.create_check_constraint(
            op.f("ck_crossmatch_runs_register"), "register IN ('missing', 'found')"
        )
    op.execute(EVIDENCE)


def downgrade() -> None:
    with op.batch_alter_table("crossmatch_runs") as batch:
        batch.drop_constraint(op.f("ck_crossmatch_runs_register"), type_="check")
        batch.drop_column("register")
    op.execute(
        "UPDATE match_candidates SET state = 'pending' WHERE state IN ('superseded', 'impossible')"
    )
    op.execute("DELETE FROM match_candidates WHERE missing_face_id IS NULL OR found_face_id IS NULL")
    with op.batch_alter_table(
        "match_candidates", table_kwargs={"sqlite_autoincrement": True}
    ) as batch:
        batch.drop_index("ix_match_candidates_queue")
        for side in ("missing", "found"):
            for name, kind in SIDE_COLUMNS.items():
                batch.alter_column(f"{side}_{name}", existing_type=kind, nullable=False)
        for column in ("superseded_by", "gender_conflict", "estimated_age", "expected_age"):
            batch.drop_column(column)
        batch.drop_constraint(op.f("ck_match_candidates_age_verdict"), type_="check")
        for column in ("age_verdict", "warnings", "evidence"):
            batch.drop_column(column)
        batch.drop_constraint(op.f("ck_match_candidates_state"), type_="check")
        batch.create_check_constraint(op.f("ck_match_candidates_state"), f"state IN ({_in(OLD_STATES)})")
        batch.add_column(sa.Column("rank", sa.Integer(), nullable=False, server_default="1"))
        for column in DROPPED:
            batch.create_index(f"ix_match_candidates_{column}", [column])
    with op.batch_alter_table("photos") as batch:
        batch.drop_column("age_conflict")
    with op.batch_alter_table("persons") as batch:
        batch.drop_column("linked_erased_at")

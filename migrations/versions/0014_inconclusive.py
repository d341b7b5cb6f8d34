"""match_candidates: the state `inconclusive` and its reason (an examiner could not decide)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-08 02:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_STATES = ("pending", "confirmed", "rejected", "superseded", "impossible")
STATES = (*OLD_STATES, "inconclusive")
REASONS = ("better_photo", "second_examiner", "dna_or_dental")


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def upgrade() -> None:
    with op.batch_alter_table(
        "match_candidates", table_kwargs={"sqlite_autoincrement": True}
    ) as batch:
        batch.drop_constraint(op.f("ck_match_candidates_state"), type_="check")
        batch.create_check_constraint(op.f("ck_match_candidates_state"), f"state IN ({_in(STATES)})")
        batch.add_column(sa.Column("reason", sa.String(16), nullable=True))
        batch.create_check_constraint(
            op.f("ck_match_candidates_reason"), f"reason IN ({_in(REASONS)})"
        )


def downgrade() -> None:
    # An inconclusive pair goes back to the queue: the revision before knew no such state.
    op.execute("UPDATE match_candidates SET state = 'pending' WHERE state = 'inconclusive'")
    with op.batch_alter_table(
        "match_candidates", table_kwargs={"sqlite_autoincrement": True}
    ) as batch:
        batch.drop_constraint(op.f("ck_match_candidates_reason"), type_="check")
        batch.drop_column("reason")
        batch.drop_constraint(op.f("ck_match_candidates_state"), type_="check")
        batch.create_check_constraint(
            op.f("ck_match_candidates_state"), f"state IN ({_in(OLD_STATES)})"
        )

"""age_axis_attempts: the service's last attempt to learn the age axis by itself, and who runs one

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 13:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    table = op.create_table(
        "age_axis_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("faces", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(20), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("running_by", sa.String(200), nullable=True),
        sa.Column("running_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    # The one row exists from the start, so a claim is always an UPDATE (atomic on both
    # databases) and two processes never race to insert it.
    op.bulk_insert(table, [{"id": 1}])


def downgrade() -> None:
    op.drop_table("age_axis_attempts")

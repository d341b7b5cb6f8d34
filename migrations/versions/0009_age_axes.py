"""age axes: directions learned from the database's faces and removed from its embeddings

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "age_axes",
        sa.Column("version", sa.String(200), nullable=False),
        sa.Column("base_version", sa.String(200), nullable=False),
        sa.Column("directions", sa.LargeBinary(), nullable=False),
        sa.Column("part_dimensions", sa.JSON(), nullable=False),
        sa.Column("faces", sa.Integer(), nullable=False),
        sa.Column("aged_faces", sa.Integer(), nullable=False),
        sa.Column("children", sa.Integer(), nullable=False),
        sa.Column("adults", sa.Integer(), nullable=False),
        sa.Column("age_correlations", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_age_axes")),
    )


def downgrade() -> None:
    op.drop_table("age_axes")

"""shared indexes: the Milvus collection serving a generation and its change-log mark

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('shared_indexes',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('collection', sa.String(length=255), nullable=False),
    sa.Column('generation', sa.Integer(), nullable=False),
    sa.Column('model_version', sa.String(length=200), nullable=False),
    sa.Column('last_change', sa.BigInteger(), nullable=False),
    sa.Column('gaps', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_shared_indexes'))
    )


def downgrade() -> None:
    op.drop_table('shared_indexes')

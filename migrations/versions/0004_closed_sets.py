"""closed sets: CHECK constraints on status, gender, role, change op, pair state, age source

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 09:00:00

The values are written out here, frozen as of this revision: a later migration that adds a
value replaces the constraint. The audit action has none (its set grows with features).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHECKS: dict[str, dict[str, tuple[str, ...]]] = {
    "persons": {
        "status": ("missing", "found", "closed", "unidentified", "other"),
        "gender": ("male", "female", "other"),
    },
    "faces": {"gender": ("male", "female", "unknown")},
    "api_keys": {"role": ("admin", "enroller", "searcher", "reviewer")},
    "changes": {"op": ("add", "remove", "generation")},
    "match_candidates": {
        "state": ("pending", "confirmed", "rejected"),
        "missing_age_source": ("declared", "estimated"),
        "found_age_source": ("declared", "estimated"),
    },
}
# Tables whose ids SQLite must never reuse (a rebuilt table keeps AUTOINCREMENT).
AUTOINCREMENT = {"faces", "changes", "match_candidates"}


def upgrade() -> None:
    for table, columns in CHECKS.items():
        kwargs = {"sqlite_autoincrement": True} if table in AUTOINCREMENT else {}
        with op.batch_alter_table(table, table_kwargs=kwargs) as batch:
            for column, values in columns.items():
                allowed = ", ".join(f"'{v}'" for v in values)
                batch.create_check_constraint(op.f(f"ck_{table}_{column}"), f"{column} IN ({allowed})")


def downgrade() -> None:
    for table, columns in CHECKS.items():
        kwargs = {"sqlite_autoincrement": True} if table in AUTOINCREMENT else {}
        with op.batch_alter_table(table, table_kwargs=kwargs) as batch:
            for column in columns:
                batch.drop_constraint(op.f(f"ck_{table}_{column}"), type_="check")

"""Claiming due notifications from an index in claim order: only queued and retrying rows,
by (next_attempt_at, id), so a claim reads the batch it takes and no more.

Without it every claim read the whole outbox (sent rows included, which stay for the
delivery report) and sorted every due row to take the first hundred: on PostgreSQL a
sequential scan and an on-disk sort, about 70 ms a claim with 100,000 queued, while the
worker's event loop waited.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out, not bound: a planner uses a partial index only when it can see that the
# query's condition implies this one (store/public/delivery.py spells it the same way).
DUE = "state IN ('queued', 'retrying')"


def upgrade() -> None:
    op.create_index(
        "ix_notifications_claim",
        "notifications",
        ["next_attempt_at", "id"],
        postgresql_where=sa.text(DUE),
        sqlite_where=sa.text(DUE),
    )


def downgrade() -> None:
    op.drop_index("ix_notifications_claim", table_name="notifications")

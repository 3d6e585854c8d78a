"""Custody events by facility and time: judging a feed asks, per facility, for the newest
event already applied there, which otherwise reads the whole event table.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_custody_events_facility", "custody_events", ["facility_id", "occurred_at"])


def downgrade() -> None:
    op.drop_index("ix_custody_events_facility", table_name="custody_events")

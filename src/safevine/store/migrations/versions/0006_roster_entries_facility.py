"""Roster staging by facility: the per-facility fingerprints, counts and absentee checks
of a national snapshot read one facility's rows, not the whole batch.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_roster_entries_batch_facility",
        "roster_entries",
        ["batch_id", "facility_id", "a_number"],
    )


def downgrade() -> None:
    op.drop_index("ix_roster_entries_batch_facility", table_name="roster_entries")

"""Feed health: each facility's state (current, late, down, recovered, or held by staff
as paused or closed, with a reason), every change of state, and an index that finds a
facility's last arriving event without reading its history.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from safevine.store.types import BigId, UTCDateTime

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "facility_health",
        sa.Column("facility_id", BigId, sa.ForeignKey("facilities.id"), primary_key=True),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("since", UTCDateTime, nullable=False),
        # Set by staff: the facility is paused or closed on purpose, and no alert fires.
        sa.Column("held", sa.String(12)),
        sa.Column("held_reason", sa.Text),
        sa.Column("evaluated_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "facility_health_changes",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("facility_id", BigId, sa.ForeignKey("facilities.id"), nullable=False),
        sa.Column("from_state", sa.String(12)),
        sa.Column("to_state", sa.String(12), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
    )
    op.create_index(
        "ix_facility_health_changes_facility", "facility_health_changes", ["facility_id", "at"]
    )
    op.create_index(
        "ix_custody_events_facility_received", "custody_events", ["facility_id", "received_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_custody_events_facility_received", "custody_events")
    op.drop_index("ix_facility_health_changes_facility", "facility_health_changes")
    op.drop_table("facility_health_changes")
    op.drop_table("facility_health")

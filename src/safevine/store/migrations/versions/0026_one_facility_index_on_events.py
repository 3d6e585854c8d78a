"""custody_events keeps one index by facility, (facility_id, received_at), not also
(facility_id, occurred_at). Nothing reads events by facility in order of when they
happened: feed health reads a facility's newest arrivals (received_at), and a batch's
judgement reads all of a facility's events from other batches, which either index finds.
Each index by facility costs an event feed a page written per facility per transaction
(a chunk adds to the end of every facility's range), for this one with nothing gained
(BENCHMARKS.md, event ingest, fourth round).

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_custody_events_facility", "custody_events")


def downgrade() -> None:
    op.create_index("ix_custody_events_facility", "custody_events", ["facility_id", "occurred_at"])

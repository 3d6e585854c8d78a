"""Event retraction: staff retract a custody event recorded in error. The event is kept
(the audit trail stands) and marked with who retracted it, when and why; it then counts
for nothing, and a feed sending its id again is refused.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from safevine.store.types import UTCDateTime

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (
    sa.Column("retracted_at", UTCDateTime),
    sa.Column("retracted_by", sa.String(100)),
    sa.Column("retraction_reason", sa.Text),
)


def upgrade() -> None:
    for column in _COLUMNS:
        op.add_column("custody_events", column)


def downgrade() -> None:
    # Plain DROP COLUMN: a batch would copy the table, which the public views refuse.
    for column in reversed(_COLUMNS):
        op.execute(f"ALTER TABLE custody_events DROP COLUMN {column.name}")

"""Delivery receipts: what became of a notification after a provider took it. Which
provider took it, when its receipt said it arrived (`delivered`) or the registrant
confirmed it (`acknowledged`), the provider's last status and error code, and whether a
failure was permanent. Receipts find their notification by the provider's message id.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from safevine.store.types import UTCDateTime

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (
    sa.Column("provider", sa.String(60)),
    sa.Column("delivered_at", UTCDateTime),
    sa.Column("acknowledged_at", UTCDateTime),
    sa.Column("receipt", sa.String(20)),
    sa.Column("error_code", sa.String(12)),
    sa.Column("failed_permanently", sa.Boolean),
)


def upgrade() -> None:
    for column in _COLUMNS:
        op.add_column("notifications", column)
    op.create_index("ix_notifications_provider_message", "notifications", ["provider_message_id"])


def downgrade() -> None:
    op.drop_index("ix_notifications_provider_message", "notifications")
    # Plain DROP COLUMN: a batch would copy the table, which the public views refuse.
    for column in reversed(_COLUMNS):
        op.execute(f"ALTER TABLE notifications DROP COLUMN {column.name}")

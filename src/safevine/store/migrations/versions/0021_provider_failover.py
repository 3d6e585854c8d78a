"""Provider failover: the provider chosen for a notification's current attempt, written
when it is claimed (so a worker that dies mid-send leaves the retry on the same provider,
and no message goes out through two at once); an index to judge each provider's recent
receipts by, and one to find messages still awaiting a receipt.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("notifications", sa.Column("sending_via", sa.String(60)))
    op.create_index("ix_notifications_provider_sent", "notifications", ["provider", "sent_at"])
    op.create_index(
        "ix_notifications_awaiting",
        "notifications",
        ["sent_at"],
        postgresql_where=sa.text("state = 'sent'"),
        sqlite_where=sa.text("state = 'sent'"),
    )


def downgrade() -> None:
    op.drop_index("ix_notifications_awaiting", "notifications")
    op.drop_index("ix_notifications_provider_sent", "notifications")
    # Plain DROP COLUMN: a batch would copy the table, which the public views refuse.
    op.execute("ALTER TABLE notifications DROP COLUMN sending_via")

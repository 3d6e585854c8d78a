"""Three indexes of notifications hold only the rows that have their key: the provider's
message id, the time sent (by provider), the feed outage. An event's alert has none of
the three when it is written and when its batch releases it, yet each index took an
entry for it both times (a release rewrites the row, with an entry in every index, as
its state is indexed). Every query that uses them names a value of the key, so each
still finds its rows there; a unique key with no value never conflicted.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# name, columns, unique, the column that must be set
_INDEXES = (
    ("ix_notifications_provider_message", ["provider_message_id"], False, "provider_message_id"),
    ("ix_notifications_provider_sent", ["provider", "sent_at"], False, "sent_at"),
    ("uq_notifications_outage", ["outage_id", "registration_id", "purpose"], True, "outage_id"),
)


def upgrade() -> None:
    for name, columns, unique, key in _INDEXES:
        op.drop_index(name, "notifications")
        where = sa.text(f"{key} IS NOT NULL")
        op.create_index(
            name,
            "notifications",
            columns,
            unique=unique,
            postgresql_where=where,
            sqlite_where=where,
        )


def downgrade() -> None:
    for name, columns, unique, _key in _INDEXES:
        op.drop_index(name, "notifications")
        op.create_index(name, "notifications", columns, unique=unique)

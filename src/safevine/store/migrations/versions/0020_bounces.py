"""Email bounces: when an address last bounced for good, on its registration, so staff
and the registrant's own page can see the address no longer receives mail.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from safevine.store.types import UTCDateTime

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("registrations", sa.Column("bounced_at", UTCDateTime))


def downgrade() -> None:
    op.execute("ALTER TABLE registrations DROP COLUMN bounced_at")

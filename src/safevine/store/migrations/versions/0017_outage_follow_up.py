"""Outage notices queued after the evaluation that began or ended the outage commits: each
outage records when its end was followed up (resumed notices queued, or none due), so an
ended outage whose notices a failed run did not queue is taken up by the next.

Outages that ended before this revision were followed up in the transaction that ended
them: they are marked so.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from safevine.store.types import UTCDateTime

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("feed_outages", sa.Column("followed_up_at", UTCDateTime))
    op.execute("UPDATE feed_outages SET followed_up_at = ended_at WHERE ended_at IS NOT NULL")


def downgrade() -> None:
    op.execute("ALTER TABLE feed_outages DROP COLUMN followed_up_at")

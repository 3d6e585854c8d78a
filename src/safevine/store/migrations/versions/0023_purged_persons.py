"""Purge (retention): persons whose identifying data was removed, with their A-number kept
only as a keyed hash so that a return is recognised without the number.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from safevine.store.types import BigId, UTCDateTime

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "purged_persons",
        sa.Column("person_id", BigId, sa.ForeignKey("persons.id"), primary_key=True),
        sa.Column("a_number_key", sa.String(64), nullable=False),
        sa.Column("purged_at", UTCDateTime, nullable=False),
        sa.Column("returned_as", BigId, sa.ForeignKey("persons.id")),
    )
    op.create_index("ix_purged_persons_a_number_key", "purged_persons", ["a_number_key"])


def downgrade() -> None:
    op.drop_index("ix_purged_persons_a_number_key", "purged_persons")
    op.drop_table("purged_persons")

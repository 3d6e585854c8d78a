"""Calls a registrant confirms with a PIN, and every attempt to reach them.

A voice registration keeps an Argon2id hash of the 4-digit PIN its registrant chose (never
the PIN). Each call is one row of `call_attempts`: when it was placed, what the provider
reported (no answer, busy, an answering machine, answered) and whether the PIN was
entered; the repeats of an unacknowledged call are judged from them. The public service
writes them (the provider's callbacks arrive there), as it writes notifications.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from safevine.store.types import BigId, UTCDateTime

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PUBLIC_ROLE = "safevine_public"


def upgrade() -> None:
    op.add_column("registrations", sa.Column("pin_hash", sa.String(200)))
    op.create_table(
        "call_attempts",
        sa.Column("id", BigId, primary_key=True),
        sa.Column(
            "notification_id",
            BigId,
            sa.ForeignKey(
                "notifications.id", name="fk_call_attempts_notification_id_notifications"
            ),
            nullable=False,
        ),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("call_sid", sa.String(200), nullable=False),
        sa.Column("placed_at", UTCDateTime, nullable=False),
        sa.Column("status", sa.String(20)),
        sa.Column("answered_by", sa.String(30)),
        sa.Column("outcome", sa.String(20)),
        sa.Column("pin_tries", sa.Integer, nullable=False, server_default="0"),
        sa.Column("ended_at", UTCDateTime),
        sa.UniqueConstraint("call_sid", name="uq_call_attempts_call_sid"),
    )
    op.create_index("ix_call_attempts_notification", "call_attempts", ["notification_id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"GRANT SELECT, INSERT, UPDATE ON call_attempts TO {PUBLIC_ROLE}")
        op.execute(f"GRANT USAGE, SELECT ON SEQUENCE call_attempts_id_seq TO {PUBLIC_ROLE}")


def downgrade() -> None:
    op.drop_index("ix_call_attempts_notification", "call_attempts")
    op.drop_table("call_attempts")
    op.execute("ALTER TABLE registrations DROP COLUMN pin_hash")

"""Registrations and the notification outbox; the public role may use both.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from safevine.store.types import BigId, UTCDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PUBLIC_ROLE = "safevine_public"


def upgrade() -> None:
    op.create_table(
        "registrations",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("person_ref", sa.String(32), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("address_key_id", sa.String(16), nullable=False),
        sa.Column("address_ciphertext", sa.LargeBinary, nullable=False),
        sa.Column("address_index", sa.String(64), nullable=False),
        sa.Column("address_hint", sa.String(60), nullable=False),
        sa.Column("language", sa.String(2), nullable=False),
        sa.Column("wording", sa.String(10), nullable=False),
        sa.Column("events", sa.JSON, nullable=False),
        sa.Column("quiet_start", sa.String(5)),
        sa.Column("quiet_end", sa.String(5)),
        sa.Column("time_zone", sa.String(64)),
        sa.Column("allow_voicemail", sa.Integer, nullable=False, server_default="1"),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("end_reason", sa.String(30)),
        sa.Column("pending_token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("manage_token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("manage_token_key_id", sa.String(16)),
        sa.Column("manage_token_ciphertext", sa.LargeBinary),
        sa.Column("code_hash", sa.String(200)),
        sa.Column("code_expires_at", UTCDateTime),
        sa.Column("code_attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("webhook_secret_key_id", sa.String(16)),
        sa.Column("webhook_secret_ciphertext", sa.LargeBinary),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("confirmed_at", UTCDateTime),
        sa.Column("ended_at", UTCDateTime),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_registrations_person_ref", "registrations", ["person_ref"])
    op.create_index("ix_registrations_address_index", "registrations", ["address_index"])
    op.create_table(
        "notifications",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("registration_id", BigId, sa.ForeignKey("registrations.id"), nullable=False),
        sa.Column("purpose", sa.String(12), nullable=False),
        sa.Column("event_pk", BigId, sa.ForeignKey("custody_events.id")),
        sa.Column("content", sa.JSON, nullable=False),
        sa.Column("secret_key_id", sa.String(16)),
        sa.Column("secret_ciphertext", sa.LargeBinary),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", UTCDateTime, nullable=False),
        sa.Column("deferred_reason", sa.String(30)),
        sa.Column("claimed_by", sa.String(80)),
        sa.Column("claimed_at", UTCDateTime),
        sa.Column("idempotency_key", sa.String(64), nullable=False, unique=True),
        sa.Column("provider_message_id", sa.String(200)),
        sa.Column("last_error", sa.Text),
        sa.Column("cancel_reason", sa.String(30)),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("sent_at", UTCDateTime),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint(
            "registration_id", "event_pk", name="uq_notifications_registration_event"
        ),
    )
    op.create_index("ix_notifications_due", "notifications", ["state", "next_attempt_at"])
    if op.get_bind().dialect.name == "postgresql":
        # The public web and the dispatcher run as the public role: they create and read
        # registrations and work the outbox, and still cannot read a single person record.
        op.execute(f"GRANT SELECT, INSERT, UPDATE ON registrations, notifications TO {PUBLIC_ROLE}")
        op.execute(
            f"GRANT USAGE, SELECT ON SEQUENCE registrations_id_seq, notifications_id_seq "
            f"TO {PUBLIC_ROLE}"
        )


def downgrade() -> None:
    op.drop_table("notifications")
    op.drop_table("registrations")

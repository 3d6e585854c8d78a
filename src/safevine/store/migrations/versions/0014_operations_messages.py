"""Messages to the agency's operations address (not to registrants), sent by the worker
with the same transports and retries as notifications; the first kind is the audit
chain's head, sent daily, so that a removed tail is caught without anyone keeping the
head by hand. Each head sent stays as a checkpoint that `audit verify` checks.

The worker works on the public path, which reads no audit entry: `audit_head` (a view on
SQLite, a SECURITY DEFINER function on PostgreSQL) gives it the newest entry's number and
link, and nothing else.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from safevine.store.types import BigId, UTCDateTime

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PUBLIC_ROLE = "safevine_public"


def upgrade() -> None:
    op.create_table(
        "operations_messages",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", UTCDateTime, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("sent_at", UTCDateTime),
    )
    op.create_index(
        "ix_operations_messages_due", "operations_messages", ["state", "next_attempt_at"]
    )
    op.create_index("ix_operations_messages_kind", "operations_messages", ["kind", "created_at"])
    if op.get_bind().dialect.name != "postgresql":
        op.execute(
            "CREATE VIEW audit_head AS SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"
        )
        return
    op.execute(
        """CREATE FUNCTION audit_head() RETURNS TABLE (seq integer, hash text)
            LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
            SELECT a.seq, a.hash::text FROM audit_log a ORDER BY a.seq DESC LIMIT 1
            $$"""
    )
    op.execute("REVOKE ALL ON FUNCTION audit_head() FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION audit_head() TO {PUBLIC_ROLE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON operations_messages TO {PUBLIC_ROLE}")
    op.execute(f"GRANT USAGE, SELECT ON SEQUENCE operations_messages_id_seq TO {PUBLIC_ROLE}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION audit_head()")
    else:
        op.execute("DROP VIEW audit_head")
    op.drop_index("ix_operations_messages_kind", "operations_messages")
    op.drop_index("ix_operations_messages_due", "operations_messages")
    op.drop_table("operations_messages")

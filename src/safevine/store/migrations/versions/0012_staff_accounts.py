"""Staff accounts: human logins with a password (Argon2id) and a TOTP second factor (or an
OpenID Connect subject), roles, server-side sessions, and every login attempt; API
tokens belong to an account.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from safevine.store.types import BigId, UTCDateTime

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "staff_accounts",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("roles", sa.JSON, nullable=False),
        sa.Column("password_hash", sa.String(200)),
        # The TOTP secret, encrypted with the app's key (never readable from the database).
        sa.Column("totp_key_id", sa.String(16)),
        sa.Column("totp_ciphertext", sa.LargeBinary),
        sa.Column("totp_confirmed_at", UTCDateTime),
        # The last time step accepted: a code is never accepted twice.
        sa.Column("totp_last_step", sa.BigInteger),
        sa.Column("oidc_subject", sa.String(255), unique=True),
        sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"),
        sa.Column("locked_at", UTCDateTime),
        sa.Column("disabled_at", UTCDateTime),
        sa.Column("password_changed_at", UTCDateTime),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "staff_sessions",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column(
            "account_id",
            BigId,
            sa.ForeignKey("staff_accounts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        # Set when the second factor was passed; until then the session may only offer it.
        sa.Column("mfa_passed_at", UTCDateTime),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("last_seen_at", UTCDateTime, nullable=False),
        sa.Column("ended_at", UTCDateTime),
        sa.Column("end_reason", sa.String(20)),
        sa.Column("client", sa.String(64)),
    )
    op.create_index("ix_staff_sessions_account", "staff_sessions", ["account_id"])
    op.create_table(
        "staff_login_attempts",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("account_name", sa.String(100), nullable=False),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
    )
    op.create_index("ix_staff_login_attempts_client", "staff_login_attempts", ["client", "at"])
    with op.batch_alter_table("staff_tokens") as batch:
        batch.add_column(
            sa.Column(
                "account_id",
                BigId,
                sa.ForeignKey("staff_accounts.id", name="fk_staff_tokens_account"),
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("staff_tokens") as batch:
        batch.drop_constraint("fk_staff_tokens_account", type_="foreignkey")
        batch.drop_column("account_id")
    op.drop_index("ix_staff_login_attempts_client", "staff_login_attempts")
    op.drop_table("staff_login_attempts")
    op.drop_index("ix_staff_sessions_account", "staff_sessions")
    op.drop_table("staff_sessions")
    op.drop_table("staff_accounts")

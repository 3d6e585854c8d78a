"""Audit entries linked by a keyed HMAC instead of a plain SHA-256.

With a plain hash, anyone who could write to the database could change an entry and
recompute every hash after it. From here on each entry's link is an HMAC-SHA256 with a
key the database does not hold (`store/records/audit.py`). Entries written before keep
their SHA-256 links and are marked so; verification refuses an unkeyed entry after a
keyed one, so a rewritten chain cannot pass itself off as an old one.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN on both databases: SQLite's copy-and-rename would drop the
    # triggers that keep the table append-only.
    op.add_column(
        "audit_log", sa.Column("link", sa.String(12), nullable=False, server_default="sha256")
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_column("audit_log", "link")
        return
    # SQLite drops the column by copying the table (3.35's DROP COLUMN is not everywhere),
    # which drops its triggers: they are made again as 0004 made them.
    with op.batch_alter_table("audit_log", recreate="always") as batch:
        batch.drop_column("link")
    for verb in ("UPDATE", "DELETE"):
        op.execute(f"DROP TRIGGER IF EXISTS audit_log_no_{verb.lower()}")
        op.execute(
            f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
            "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
        )

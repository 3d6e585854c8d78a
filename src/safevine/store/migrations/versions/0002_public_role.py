"""The public database role: it may read the public views and nothing else.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PUBLIC_ROLE = "safevine_public"
PUBLIC_VIEWS = ("public_persons", "public_person_names")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite has no roles: the public path there opens its connections query-only.
    # Roles belong to the whole server, so another database may have made it already, or
    # be making it at this moment (two migrations at once race past the check).
    op.execute(
        f"""DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{PUBLIC_ROLE}') THEN
                CREATE ROLE {PUBLIC_ROLE} NOLOGIN;
            END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END $$"""
    )
    op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {PUBLIC_ROLE}")
    # Views run with their owner's rights, so SELECT on the views is all the role needs.
    for view in PUBLIC_VIEWS:
        op.execute(f"GRANT SELECT ON {view} TO {PUBLIC_ROLE}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for view in PUBLIC_VIEWS:
        op.execute(f"REVOKE SELECT ON {view} FROM {PUBLIC_ROLE}")

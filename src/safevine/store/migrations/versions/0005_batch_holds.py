"""Holding anomalous batches: holds, the statuses from before a held batch, and public
views that show those until the batch is released.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from safevine.store.types import BigId, UTCDateTime

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The status the public may see: the one from before the earliest unconfirmed batch that
# changed the person, or the current one. A person whom only an unconfirmed batch put in
# custody has no confirmed status at all, and stays out.
_HELD = "(SELECT MIN(h2.batch_id) FROM held_status h2 WHERE h2.person_id = p.id)"
_STATE = "CASE WHEN h.person_id IS NULL THEN s.state ELSE h.state END"
_LEFT = "CASE WHEN h.person_id IS NULL THEN s.left_custody_at ELSE h.left_custody_at END"
_SINCE = "CASE WHEN h.person_id IS NULL THEN s.occurred_at ELSE h.occurred_at END"
_CHANGED = "CASE WHEN h.person_id IS NULL THEN s.updated_at ELSE h.updated_at END"
_FACILITY = "CASE WHEN h.person_id IS NULL THEN s.facility_id ELSE h.facility_id END"

_RULE = {
    "postgresql": f"""
        p.protection = 'cleared'
        AND p.date_of_birth IS NOT NULL
        AND (EXTRACT(YEAR FROM (now() AT TIME ZONE 'UTC'))::int
             - EXTRACT(YEAR FROM p.date_of_birth)::int
             - CASE WHEN to_char(now() AT TIME ZONE 'UTC', 'MM-DD')
                         < to_char(p.date_of_birth, 'MM-DD')
                    THEN 1 ELSE 0 END) >= 18
        AND ({_STATE} = 'in_custody'
             OR ({_LEFT} IS NOT NULL
                 AND {_LEFT} > now() - make_interval(days => pol.retention_days)))
    """,
    "sqlite": f"""
        p.protection = 'cleared'
        AND p.date_of_birth IS NOT NULL
        AND (CAST(strftime('%Y', 'now') AS INTEGER)
             - CAST(strftime('%Y', p.date_of_birth) AS INTEGER)
             - CASE WHEN strftime('%m-%d', 'now') < strftime('%m-%d', p.date_of_birth)
                    THEN 1 ELSE 0 END) >= 18
        AND ({_STATE} = 'in_custody'
             OR ({_LEFT} IS NOT NULL
                 AND julianday({_LEFT}) > julianday('now') - pol.retention_days))
    """,
}

_PUBLIC_PERSONS = f"""
    SELECT p.public_ref, p.a_number, p.given_name, p.family_name, p.country_of_birth,
           {_STATE} AS custody_state, {_SINCE} AS status_since,
           {_CHANGED} AS last_changed_at,
           f.name AS facility_name, f.address AS facility_address, f.city AS facility_city,
           f.state AS facility_state, f.postal_code AS facility_postal_code,
           f.phone AS facility_phone, f.time_zone AS facility_time_zone
    FROM persons p
    JOIN custody_status s ON s.person_id = p.id
    LEFT JOIN held_status h ON h.person_id = p.id AND h.batch_id = {_HELD}
    LEFT JOIN facilities f ON f.id = {_FACILITY}
    CROSS JOIN publication_policy pol
    WHERE (h.person_id IS NULL OR h.had_status = 1) AND {{rule}}
"""

_PUBLIC_NAMES = """
    SELECT pp.public_ref, n.given_key, n.family_key, p.date_of_birth
    FROM person_names n
    JOIN persons p ON p.id = n.person_id
    JOIN public_persons pp ON pp.public_ref = p.public_ref
"""


def upgrade() -> None:
    op.create_table(
        "batch_holds",
        sa.Column("id", BigId, primary_key=True),
        sa.Column(
            "batch_id", BigId, sa.ForeignKey("ingest_batches.id"), nullable=False, unique=True
        ),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("rule", sa.Text, nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("decided_at", UTCDateTime),
        sa.Column("decided_by", sa.String(100)),
        sa.Column("note", sa.Text),
    )
    op.create_table(
        "held_status",
        sa.Column("batch_id", BigId, sa.ForeignKey("ingest_batches.id"), primary_key=True),
        sa.Column("person_id", BigId, sa.ForeignKey("persons.id"), primary_key=True),
        sa.Column("had_status", sa.Integer, nullable=False),
        sa.Column("state", sa.String(12)),
        sa.Column("facility_id", BigId),
        sa.Column("event_pk", BigId),
        sa.Column("event_id", sa.String(200)),
        sa.Column("occurred_at", UTCDateTime),
        sa.Column("sequence", sa.Integer),
        sa.Column("left_custody_at", UTCDateTime),
        sa.Column("updated_at", UTCDateTime),
    )
    op.create_index("ix_held_status_person", "held_status", ["person_id", "batch_id"])
    with op.batch_alter_table("custody_events") as batch:
        batch.add_column(sa.Column("discarded_at", UTCDateTime))
    op.create_index("ix_custody_events_batch", "custody_events", ["batch_id"])
    with op.batch_alter_table("roster_snapshots") as batch:
        batch.add_column(sa.Column("listed", sa.Integer))
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("hold_batch_id", BigId))
    op.create_index("ix_notifications_hold_batch_id", "notifications", ["hold_batch_id"])

    dialect = op.get_bind().dialect.name
    barrier = " WITH (security_barrier = true)" if dialect == "postgresql" else ""
    op.execute("DROP VIEW public_person_names")
    op.execute("DROP VIEW public_persons")
    op.execute(
        f"CREATE VIEW public_persons{barrier} AS {_PUBLIC_PERSONS.format(rule=_RULE[dialect])}"
    )
    op.execute(f"CREATE VIEW public_person_names{barrier} AS {_PUBLIC_NAMES}")
    if dialect == "postgresql":
        op.execute("GRANT SELECT ON public_persons, public_person_names TO safevine_public")


def downgrade() -> None:
    raise NotImplementedError("0005 cannot be undone: holds would be lost")

"""Custody records: persons, names, facilities, events, status, protection, rosters, rejects,
and the public projection views.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from safevine.store.types import BigId, UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The publication rule in SQL. domain.publication.is_public is the same rule in Python,
# and tests check that the two agree at every boundary. Age is computed the same way in
# both (completed years, birthday on or after the month and day), so 29 February agrees.
_RULE = {
    "postgresql": """
        p.protection = 'cleared'
        AND p.date_of_birth IS NOT NULL
        AND (EXTRACT(YEAR FROM (now() AT TIME ZONE 'UTC'))::int
             - EXTRACT(YEAR FROM p.date_of_birth)::int
             - CASE WHEN to_char(now() AT TIME ZONE 'UTC', 'MM-DD')
                         < to_char(p.date_of_birth, 'MM-DD')
                    THEN 1 ELSE 0 END) >= 18
        AND (s.state = 'in_custody'
             OR (s.left_custody_at IS NOT NULL
                 AND s.left_custody_at > now() - make_interval(days => pol.retention_days)))
    """,
    "sqlite": """
        p.protection = 'cleared'
        AND p.date_of_birth IS NOT NULL
        AND (CAST(strftime('%Y', 'now') AS INTEGER)
             - CAST(strftime('%Y', p.date_of_birth) AS INTEGER)
             - CASE WHEN strftime('%m-%d', 'now') < strftime('%m-%d', p.date_of_birth)
                    THEN 1 ELSE 0 END) >= 18
        AND (s.state = 'in_custody'
             OR (s.left_custody_at IS NOT NULL
                 AND julianday(s.left_custody_at) > julianday('now') - pol.retention_days))
    """,
}

# Only what a public surface may show or match on; never dates of birth, protection,
# internal ids or history.
_PUBLIC_PERSONS = """
    SELECT p.public_ref, p.a_number, p.given_name, p.family_name, p.country_of_birth,
           s.state AS custody_state, s.occurred_at AS status_since,
           s.updated_at AS last_changed_at,
           f.name AS facility_name, f.address AS facility_address, f.city AS facility_city,
           f.state AS facility_state, f.postal_code AS facility_postal_code,
           f.phone AS facility_phone, f.time_zone AS facility_time_zone
    FROM persons p
    JOIN custody_status s ON s.person_id = p.id
    LEFT JOIN facilities f ON f.id = s.facility_id
    CROSS JOIN publication_policy pol
    WHERE {rule}
"""

# Every name of a public person, for exact matching. The date of birth is here only to
# narrow a name search; no public surface may display it.
_PUBLIC_NAMES = """
    SELECT pp.public_ref, n.given_key, n.family_key, p.date_of_birth
    FROM person_names n
    JOIN persons p ON p.id = n.person_id
    JOIN public_persons pp ON pp.public_ref = p.public_ref
"""


def upgrade() -> None:
    op.create_table(
        "facilities",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("code", sa.String(40), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("address", sa.String(200)),
        sa.Column("city", sa.String(100)),
        sa.Column("state", sa.String(2)),
        sa.Column("postal_code", sa.String(10)),
        sa.Column("phone", sa.String(40)),
        sa.Column("facility_type", sa.String(20)),
        sa.Column("area_of_responsibility", sa.String(10)),
        sa.Column("time_zone", sa.String(64)),
        sa.Column("average_population", sa.Integer),
        sa.Column("max_population", sa.Integer),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "persons",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("a_number", sa.String(9), nullable=False, unique=True),
        sa.Column("public_ref", sa.String(32), nullable=False, unique=True),
        sa.Column("given_name", sa.String(100)),
        sa.Column("family_name", sa.String(100)),
        sa.Column("date_of_birth", sa.Date),
        sa.Column("country_of_birth", sa.String(2)),
        sa.Column("protection", sa.String(12), nullable=False, server_default="unscreened"),
        sa.Column("screened_at", UTCDateTime),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "person_names",
        sa.Column("id", BigId, primary_key=True),
        sa.Column(
            "person_id", BigId, sa.ForeignKey("persons.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("given_name", sa.String(100), nullable=False),
        sa.Column("family_name", sa.String(100), nullable=False),
        sa.Column("given_key", sa.String(100), nullable=False),
        sa.Column("family_key", sa.String(100), nullable=False),
        sa.Column("is_primary", sa.Integer, nullable=False, server_default="0"),
        sa.UniqueConstraint("person_id", "given_key", "family_key", name="uq_person_names_key"),
    )
    op.create_index("ix_person_names_match", "person_names", ["family_key", "given_key"])
    op.create_table(
        "ingest_batches",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("source", sa.String(300), nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("finished_at", UTCDateTime),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("total", sa.Integer, nullable=False, server_default="0"),
        sa.Column("applied", sa.Integer, nullable=False, server_default="0"),
        sa.Column("duplicates", sa.Integer, nullable=False, server_default="0"),
        sa.Column("rejected", sa.Integer, nullable=False, server_default="0"),
        sa.Column("derived_events", sa.Integer, nullable=False, server_default="0"),
        sa.Column("message", sa.Text),
    )
    op.create_table(
        "ingest_rejects",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("batch_id", BigId, sa.ForeignKey("ingest_batches.id"), nullable=False),
        sa.Column("source", sa.String(300), nullable=False),
        sa.Column("line", sa.Integer, nullable=False),
        sa.Column("field", sa.String(60), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("raw", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_ingest_rejects_batch_id", "ingest_rejects", ["batch_id"])
    op.create_table(
        "custody_events",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("event_id", sa.String(200), nullable=False, unique=True),
        sa.Column("person_id", BigId, sa.ForeignKey("persons.id"), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("facility_id", BigId, sa.ForeignKey("facilities.id")),
        sa.Column("occurred_at", UTCDateTime, nullable=False),
        sa.Column("sequence", sa.Integer, nullable=False, server_default="0"),
        sa.Column("received_at", UTCDateTime, nullable=False),
        sa.Column("details", sa.JSON, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("origin", sa.String(10), nullable=False),
        sa.Column("batch_id", BigId, sa.ForeignKey("ingest_batches.id")),
    )
    op.create_index("ix_custody_events_person", "custody_events", ["person_id", "occurred_at"])
    op.create_table(
        "custody_status",
        sa.Column("person_id", BigId, sa.ForeignKey("persons.id"), primary_key=True),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("facility_id", BigId, sa.ForeignKey("facilities.id")),
        sa.Column("event_pk", BigId, sa.ForeignKey("custody_events.id"), nullable=False),
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("occurred_at", UTCDateTime, nullable=False),
        sa.Column("sequence", sa.Integer, nullable=False),
        sa.Column("left_custody_at", UTCDateTime),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_custody_status_facility", "custody_status", ["facility_id", "state"])
    op.create_table(
        "protection_changes",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("person_id", BigId, sa.ForeignKey("persons.id"), nullable=False),
        sa.Column("from_status", sa.String(12), nullable=False),
        sa.Column("to_status", sa.String(12), nullable=False),
        sa.Column("as_of", UTCDateTime, nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("batch_id", BigId, sa.ForeignKey("ingest_batches.id")),
        sa.Column("recorded_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_protection_changes_person_id", "protection_changes", ["person_id"])
    op.create_table(
        "roster_snapshots",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("facility_id", BigId, sa.ForeignKey("facilities.id"), nullable=False),
        sa.Column("taken_at", UTCDateTime, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("batch_id", BigId, sa.ForeignKey("ingest_batches.id"), nullable=False),
        sa.Column("applied_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("facility_id", "taken_at", name="uq_roster_snapshots_facility_time"),
    )
    op.create_table(
        "roster_entries",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("batch_id", BigId, sa.ForeignKey("ingest_batches.id"), nullable=False),
        sa.Column("line", sa.Integer, nullable=False),
        sa.Column("facility_id", BigId, sa.ForeignKey("facilities.id")),
        sa.Column("a_number", sa.String(9), nullable=False),
        sa.Column("rejected", sa.Integer, nullable=False, server_default="0"),
        sa.Column("given_name", sa.String(100)),
        sa.Column("family_name", sa.String(100)),
        sa.Column("date_of_birth", sa.Date),
        sa.Column("country_of_birth", sa.String(2)),
    )
    op.create_index("ix_roster_entries_batch_person", "roster_entries", ["batch_id", "a_number"])
    policy = op.create_table(
        "publication_policy",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("retention_days", sa.Integer, nullable=False),
    )
    op.bulk_insert(policy, [{"id": 1, "retention_days": 60}])

    dialect = op.get_bind().dialect.name
    barrier = " WITH (security_barrier = true)" if dialect == "postgresql" else ""
    op.execute(
        f"CREATE VIEW public_persons{barrier} AS {_PUBLIC_PERSONS.format(rule=_RULE[dialect])}"
    )
    op.execute(f"CREATE VIEW public_person_names{barrier} AS {_PUBLIC_NAMES}")


def downgrade() -> None:
    op.execute("DROP VIEW public_person_names")
    op.execute("DROP VIEW public_persons")
    for table in (
        "publication_policy",
        "roster_entries",
        "roster_snapshots",
        "protection_changes",
        "custody_status",
        "custody_events",
        "ingest_rejects",
        "ingest_batches",
        "person_names",
        "persons",
        "facilities",
    ):
        op.drop_table(table)

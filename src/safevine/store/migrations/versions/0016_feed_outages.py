"""Feed outages, seen by everyone they concern: a cadence set per facility (in the facility
file or by staff), what each facility last sent as of its last evaluation, each outage
with the notices it caused, and the one public view of delayed facilities.

`public_feed_delays` shows facility-level facts only (which facility, since when nothing
has arrived): never a person, so the public role may read it beside the person views.
A notice to registrants about an outage is a notification like any other (so protection
cancels it and the dispatcher's last gate checks the person), tied to its outage, and at
most one of each purpose per registration and outage by a unique index.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from safevine.store.types import BigId, UTCDateTime

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PUBLIC_ROLE = "safevine_public"

# Late and down facilities, and those staff paused (their information is no fresher for
# being paused on purpose); closed ones hold nobody, so they are not listed.
_DELAYS = """
    SELECT f.name AS facility_name, f.address AS facility_address, f.city AS facility_city,
           f.state AS facility_state, f.postal_code AS facility_postal_code,
           f.phone AS facility_phone, f.time_zone AS facility_time_zone,
           CASE WHEN h.held = 'paused' THEN 'paused' ELSE h.state END AS health,
           h.last_data AS last_received
    FROM facility_health h
    JOIN facilities f ON f.id = h.facility_id
    WHERE (h.held IS NULL AND h.state IN ('late', 'down')) OR h.held = 'paused'
"""


def upgrade() -> None:
    with op.batch_alter_table("facilities") as batch:
        # Set cadences, in minutes; NULL means learned from the facility's history.
        batch.add_column(sa.Column("roster_every_minutes", sa.Integer))
        batch.add_column(sa.Column("events_every_minutes", sa.Integer))
        batch.add_column(sa.Column("down_after_minutes", sa.Integer))
    with op.batch_alter_table("facility_health") as batch:
        batch.add_column(sa.Column("last_roster", UTCDateTime))
        batch.add_column(sa.Column("last_roster_change", UTCDateTime))
        batch.add_column(sa.Column("last_roster_hash", sa.String(64)))
        batch.add_column(sa.Column("last_event", UTCDateTime))
        # The freshest arrival the judgement counted (what "last received" means).
        batch.add_column(sa.Column("last_data", UTCDateTime))
        # The cadences the last evaluation used, set or learned, in minutes.
        batch.add_column(sa.Column("roster_every_minutes", sa.Integer))
        batch.add_column(sa.Column("events_every_minutes", sa.Integer))
        batch.add_column(sa.Column("cadence_learned", sa.Integer))
        # When the cadence was last learned from history (it is again, at most hourly).
        batch.add_column(sa.Column("cadence_at", UTCDateTime))
        batch.add_column(sa.Column("held_by", sa.String(100)))
        batch.add_column(sa.Column("held_at", UTCDateTime))
        batch.add_column(sa.Column("outage_id", BigId))
    op.create_table(
        "feed_outages",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("facility_id", BigId, sa.ForeignKey("facilities.id"), nullable=False),
        sa.Column("began_at", UTCDateTime, nullable=False),
        # What had last arrived when it began: the date registrants are told.
        sa.Column("last_data", UTCDateTime),
        sa.Column("ended_at", UTCDateTime),
        sa.Column("delay_notices", sa.Integer, nullable=False, server_default="0"),
        sa.Column("resumed_notices", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_index("ix_feed_outages_facility", "feed_outages", ["facility_id", "began_at"])
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("outage_id", BigId))
    op.create_index(
        "uq_notifications_outage",
        "notifications",
        ["outage_id", "registration_id", "purpose"],
        unique=True,
    )
    dialect = op.get_bind().dialect.name
    barrier = " WITH (security_barrier = true)" if dialect == "postgresql" else ""
    op.execute(f"CREATE VIEW public_feed_delays{barrier} AS {_DELAYS}")
    if dialect == "postgresql":
        op.execute(f"GRANT SELECT ON public_feed_delays TO {PUBLIC_ROLE}")


def downgrade() -> None:
    op.execute("DROP VIEW public_feed_delays")
    op.drop_index("uq_notifications_outage", "notifications")
    op.drop_index("ix_feed_outages_facility", "feed_outages")
    op.drop_table("feed_outages")
    # Plain DROP COLUMN (SQLite 3.35 and later have it): a batch would copy `facilities`
    # into a new table, which the public views refuse.
    for table, names in _ADDED.items():
        for name in names:
            op.execute(f"ALTER TABLE {table} DROP COLUMN {name}")


_ADDED = {
    "notifications": ("outage_id",),
    "facility_health": (
        "outage_id",
        "held_at",
        "held_by",
        "cadence_at",
        "cadence_learned",
        "events_every_minutes",
        "roster_every_minutes",
        "last_data",
        "last_event",
        "last_roster_hash",
        "last_roster_change",
        "last_roster",
    ),
    "facilities": ("down_after_minutes", "events_every_minutes", "roster_every_minutes"),
}

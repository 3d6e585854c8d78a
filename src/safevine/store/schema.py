"""The tables. Migrations under `migrations/` create exactly these; tests check they agree."""

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from safevine.store.metadata import metadata

# The registration and notification tables belong to the public path and live there;
# importing them here puts every table in one metadata for migrations and tests.
from safevine.store.public.tables import notifications, registrations  # noqa: F401
from safevine.store.types import BigId, UTCDateTime

facilities = Table(
    "facilities",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("code", String(40), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("address", String(200)),
    Column("city", String(100)),
    Column("state", String(2)),
    Column("postal_code", String(10)),
    Column("phone", String(40)),
    Column("facility_type", String(20)),
    Column("area_of_responsibility", String(10)),
    Column("time_zone", String(64)),
    Column("average_population", Integer),
    Column("max_population", Integer),
    Column("updated_at", UTCDateTime, nullable=False),
    # Set cadences (facility file or staff), in minutes; NULL: learned from its history.
    Column("roster_every_minutes", Integer),
    Column("events_every_minutes", Integer),
    Column("down_after_minutes", Integer),
)

persons = Table(
    "persons",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("a_number", String(9), nullable=False, unique=True),
    # Random and unguessable: the only handle on a person that ever leaves the system.
    Column("public_ref", String(32), nullable=False, unique=True),
    Column("given_name", String(100)),
    Column("family_name", String(100)),
    Column("date_of_birth", Date),
    Column("country_of_birth", String(2)),
    Column("protection", String(12), nullable=False, server_default="unscreened"),
    Column("screened_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # The screening queue, longest waiting first, without reading everyone screened
    # (migration 0024). A query uses it only when it names the state as this literal.
    Index(
        "ix_persons_unscreened",
        "created_at",
        "id",
        sqlite_where=text("protection = 'unscreened'"),
        postgresql_where=text("protection = 'unscreened'"),
    ),
)

# Every name a person is known by, the display name included, with folded matching keys.
person_names = Table(
    "person_names",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("person_id", BigId, ForeignKey("persons.id", ondelete="CASCADE"), nullable=False),
    Column("given_name", String(100), nullable=False),
    Column("family_name", String(100), nullable=False),
    Column("given_key", String(100), nullable=False),
    Column("family_key", String(100), nullable=False),
    Column("is_primary", Integer, nullable=False, server_default="0"),
    UniqueConstraint("person_id", "given_key", "family_key", name="uq_person_names_key"),
    Index("ix_person_names_match", "family_key", "given_key"),
)

ingest_batches = Table(
    "ingest_batches",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("kind", String(20), nullable=False),
    Column("source", String(300), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("status", String(12), nullable=False),
    Column("total", Integer, nullable=False, server_default="0"),
    Column("applied", Integer, nullable=False, server_default="0"),
    Column("duplicates", Integer, nullable=False, server_default="0"),
    Column("rejected", Integer, nullable=False, server_default="0"),
    Column("derived_events", Integer, nullable=False, server_default="0"),
    Column("message", Text),
)

ingest_rejects = Table(
    "ingest_rejects",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("batch_id", BigId, ForeignKey("ingest_batches.id"), nullable=False, index=True),
    Column("source", String(300), nullable=False),
    Column("line", Integer, nullable=False),
    Column("field", String(60), nullable=False),
    Column("reason", Text, nullable=False),
    Column("raw", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

custody_events = Table(
    "custody_events",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("event_id", String(200), nullable=False, unique=True),
    Column("person_id", BigId, ForeignKey("persons.id"), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("facility_id", BigId, ForeignKey("facilities.id")),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("sequence", Integer, nullable=False, server_default="0"),
    Column("received_at", UTCDateTime, nullable=False),
    Column("details", JSON, nullable=False),
    # Tells a true duplicate (no-op) from a different event reusing an id (a reject).
    Column("content_hash", String(64), nullable=False),
    Column("origin", String(10), nullable=False),
    Column("batch_id", BigId, ForeignKey("ingest_batches.id")),
    # Set when a held batch is discarded: the event stays in history, marked, and counts
    # for nothing.
    Column("discarded_at", UTCDateTime),
    # Set when staff retract the event as recorded in error (migration 0022): kept in
    # history with who, when and why, it counts for nothing, and its id is never reused.
    Column("retracted_at", UTCDateTime),
    Column("retracted_by", String(100)),
    Column("retraction_reason", Text),
    Index("ix_custody_events_person", "person_id", "occurred_at"),
    Index("ix_custody_events_batch", "batch_id"),
    Index("ix_custody_events_facility_received", "facility_id", "received_at"),
)

# Derived from custody_events by the one writer in records.events; never edited elsewhere.
custody_status = Table(
    "custody_status",
    metadata,
    Column("person_id", BigId, ForeignKey("persons.id"), primary_key=True),
    Column("state", String(12), nullable=False),
    Column("facility_id", BigId, ForeignKey("facilities.id")),
    Column("event_pk", BigId, ForeignKey("custody_events.id"), nullable=False),
    Column("event_id", String(200), nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("sequence", Integer, nullable=False),
    Column("left_custody_at", UTCDateTime),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_custody_status_facility", "facility_id", "state"),
)

protection_changes = Table(
    "protection_changes",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("person_id", BigId, ForeignKey("persons.id"), nullable=False, index=True),
    Column("from_status", String(12), nullable=False),
    Column("to_status", String(12), nullable=False),
    Column("as_of", UTCDateTime, nullable=False),
    Column("source", String(200), nullable=False),
    Column("reason", Text),
    Column("actor", String(100), nullable=False),
    Column("batch_id", BigId, ForeignKey("ingest_batches.id")),
    Column("recorded_at", UTCDateTime, nullable=False),
)

roster_snapshots = Table(
    "roster_snapshots",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("facility_id", BigId, ForeignKey("facilities.id"), nullable=False),
    Column("taken_at", UTCDateTime, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("batch_id", BigId, ForeignKey("ingest_batches.id"), nullable=False),
    Column("applied_at", UTCDateTime, nullable=False),
    # How many people it listed at the facility, to notice a snapshot that shrank.
    Column("listed", Integer),
    UniqueConstraint("facility_id", "taken_at", name="uq_roster_snapshots_facility_time"),
)

# Staging for a roster being applied: the diff runs in the database, so a national
# snapshot of millions of people needs no more memory than a small one. Emptied after use.
roster_entries = Table(
    "roster_entries",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("batch_id", BigId, ForeignKey("ingest_batches.id"), nullable=False),
    Column("line", Integer, nullable=False),
    # Unknown for a rejected row whose facility could not be read.
    Column("facility_id", BigId, ForeignKey("facilities.id")),
    Column("a_number", String(9), nullable=False),
    # 1: the row was rejected, but its A-number still marks the person as listed, so a
    # bad row can never turn into a false "left custody". 2: an accepted row of someone
    # in custody where it lists them, kept only for the facts it tells that their record
    # lacks or contradicts, merged once the snapshot is known to apply.
    Column("rejected", Integer, nullable=False, server_default="0"),
    Column("given_name", String(100)),
    Column("family_name", String(100)),
    Column("date_of_birth", Date),
    Column("country_of_birth", String(2)),
    Index("ix_roster_entries_batch_person", "batch_id", "a_number"),
    Index("ix_roster_entries_batch_facility", "batch_id", "facility_id", "a_number"),
)

# One row: policy values the public views need, kept in the database so the views and
# the application can never disagree about them.
publication_policy = Table(
    "publication_policy",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("retention_days", Integer, nullable=False),
)


# Bearer tokens for the staff API; only a hash of each token is kept.
# Staff accounts (migration 0012): see store/records/staff_accounts.py.
staff_accounts = Table(
    "staff_accounts",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("roles", JSON, nullable=False),
    Column("password_hash", String(200)),
    Column("totp_key_id", String(16)),
    Column("totp_ciphertext", LargeBinary),
    Column("totp_confirmed_at", UTCDateTime),
    Column("totp_last_step", BigInteger),
    Column("oidc_subject", String(255), unique=True),
    Column("failed_logins", Integer, nullable=False, server_default="0"),
    Column("locked_at", UTCDateTime),
    Column("disabled_at", UTCDateTime),
    Column("password_changed_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

staff_sessions = Table(
    "staff_sessions",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column(
        "account_id", BigId, ForeignKey("staff_accounts.id", ondelete="CASCADE"), nullable=False
    ),
    Column("csrf_token", String(64), nullable=False),
    Column("mfa_passed_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime),
    Column("end_reason", String(20)),
    Column("client", String(64)),
    Index("ix_staff_sessions_account", "account_id"),
)

staff_login_attempts = Table(
    "staff_login_attempts",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("at", UTCDateTime, nullable=False),
    Column("account_name", String(100), nullable=False),
    Column("client", String(64), nullable=False),
    Column("outcome", String(20), nullable=False),
    Index("ix_staff_login_attempts_client", "client", "at"),
)

staff_tokens = Table(
    "staff_tokens",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("scopes", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
    Column("last_used_at", UTCDateTime),
    # The account it belongs to; none for tokens made at the command line before 0012.
    Column("account_id", BigId, ForeignKey("staff_accounts.id", name="fk_staff_tokens_account")),
)

# Append only: a trigger refuses UPDATE and DELETE, and each entry carries the hash of the
# one before it, so `safevine audit verify` finds any change, deletion or reordering.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("seq", Integer, nullable=False, unique=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("action", String(40), nullable=False),
    Column("target", String(200), nullable=False),
    Column("reason", Text),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    # How `hash` links the entry: "hmac" (keyed, migration 0013 on) or "sha256" (before).
    Column("link", String(12), nullable=False, server_default="sha256"),
)

# Clearing a protection with two people: one asks, another confirms within 24 hours.
clear_requests = Table(
    "clear_requests",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("person_id", BigId, ForeignKey("persons.id"), nullable=False, index=True),
    Column("requested_by", String(100), nullable=False),
    Column("reason", Text, nullable=False),
    Column("requested_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("state", String(12), nullable=False),
    Column("decided_by", String(100)),
    Column("decided_at", UTCDateTime),
)


# A batch under judgement or held for review. While one exists for a batch, its
# notifications wait (state `held`) and the public keeps seeing the status from before it.
batch_holds = Table(
    "batch_holds",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("batch_id", BigId, ForeignKey("ingest_batches.id"), nullable=False, unique=True),
    Column("state", String(12), nullable=False),  # held, released, discarded, resolved
    Column("rule", Text, nullable=False),
    Column("detail", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("decided_at", UTCDateTime),
    Column("decided_by", String(100)),
    Column("note", Text),
)

# Each person's status from just before a batch under judgement first changed it. Rows
# exist only while the batch is unconfirmed; the public views show these instead.
held_status = Table(
    "held_status",
    metadata,
    Column("batch_id", BigId, ForeignKey("ingest_batches.id"), primary_key=True),
    Column("person_id", BigId, ForeignKey("persons.id"), primary_key=True),
    Column("had_status", Integer, nullable=False),
    Column("state", String(12)),
    Column("facility_id", BigId),
    Column("event_pk", BigId),
    Column("event_id", String(200)),
    Column("occurred_at", UTCDateTime),
    Column("sequence", Integer),
    Column("left_custody_at", UTCDateTime),
    Column("updated_at", UTCDateTime),
    Index("ix_held_status_person", "person_id", "batch_id"),
)


# Feed health (migration 0015): see store/records/feed_health.py.
facility_health = Table(
    "facility_health",
    metadata,
    Column("facility_id", BigId, ForeignKey("facilities.id"), primary_key=True),
    Column("state", String(12), nullable=False),
    Column("since", UTCDateTime, nullable=False),
    Column("held", String(12)),
    Column("held_reason", Text),
    Column("evaluated_at", UTCDateTime, nullable=False),
    Column("last_roster", UTCDateTime),
    Column("last_roster_change", UTCDateTime),
    Column("last_roster_hash", String(64)),
    Column("last_event", UTCDateTime),
    # The freshest arrival the judgement counted: what "last received" means.
    Column("last_data", UTCDateTime),
    # The cadences the last evaluation used, set or learned, in minutes.
    Column("roster_every_minutes", Integer),
    Column("events_every_minutes", Integer),
    Column("cadence_learned", Integer),
    Column("cadence_at", UTCDateTime),
    Column("held_by", String(100)),
    Column("held_at", UTCDateTime),
    # The outage under way (down, until data arrives again), if any.
    Column("outage_id", BigId),
)

facility_health_changes = Table(
    "facility_health_changes",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("facility_id", BigId, ForeignKey("facilities.id"), nullable=False),
    Column("from_state", String(12)),
    Column("to_state", String(12), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_facility_health_changes_facility", "facility_id", "at"),
)

# Each time a facility went down, until data arrived again, with the notices it caused.
feed_outages = Table(
    "feed_outages",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("facility_id", BigId, ForeignKey("facilities.id"), nullable=False),
    Column("began_at", UTCDateTime, nullable=False),
    Column("last_data", UTCDateTime),
    Column("ended_at", UTCDateTime),
    Column("delay_notices", Integer, nullable=False, server_default="0"),
    Column("resumed_notices", Integer, nullable=False, server_default="0"),
    # When the end was followed up: resumed notices queued, or none due (staff held the
    # facility). Notices are queued after the evaluation commits; an ended outage not yet
    # followed up is taken up by the next run, so none is lost to a failed one.
    Column("followed_up_at", UTCDateTime),
    Index("ix_feed_outages_facility", "facility_id", "began_at"),
)

# Persons whose identifying data a purge removed (migration 0023; store/records/purge.py):
# the A-number only as a keyed hash, so a later booking of the same person is recognised as
# a return (`returned_as`) without the number being kept.
purged_persons = Table(
    "purged_persons",
    metadata,
    Column("person_id", BigId, ForeignKey("persons.id"), primary_key=True),
    Column("a_number_key", String(64), nullable=False, index=True),
    Column("purged_at", UTCDateTime, nullable=False),
    Column("returned_as", BigId, ForeignKey("persons.id")),
)

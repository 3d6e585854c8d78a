"""Tables the public path owns: registrations people make, and the outbox of their messages.

Contact addresses are only ever stored encrypted (with the id of the key), beside a keyed
hash (blind index) to find duplicates and a masked hint to show their owner.
"""

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
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
from safevine.store.types import BigId, UTCDateTime

registrations = Table(
    "registrations",
    metadata,
    Column("id", BigId, primary_key=True),
    # The person's public reference as the registrant had it; it may match nobody.
    Column("person_ref", String(32), nullable=False, index=True),
    # Shown in discreet messages ("update for registration 482193"); not an internal id.
    Column("number", Integer, nullable=False),
    Column("channel", String(10), nullable=False),
    Column("address_key_id", String(16), nullable=False),
    Column("address_ciphertext", LargeBinary, nullable=False),
    Column("address_index", String(64), nullable=False, index=True),
    Column("address_hint", String(60), nullable=False),
    Column("language", String(2), nullable=False),
    Column("wording", String(10), nullable=False),
    Column("events", JSON, nullable=False),
    Column("quiet_start", String(5)),
    Column("quiet_end", String(5)),
    Column("time_zone", String(64)),
    Column("allow_voicemail", Integer, nullable=False, server_default="1"),
    # A voice registrant's 4-digit PIN, as an Argon2id hash (migration 0019): entering
    # it on a call acknowledges the call. Never read back.
    Column("pin_hash", String(200)),
    # When mail to the address last bounced for good (migration 0020).
    Column("bounced_at", UTCDateTime),
    Column("state", String(24), nullable=False),
    Column("end_reason", String(30)),
    Column("pending_token_hash", String(64), nullable=False, unique=True),
    Column("manage_token_hash", String(64), nullable=False, unique=True),
    # The token itself, encrypted, because every message carries the manage link.
    Column("manage_token_key_id", String(16)),
    Column("manage_token_ciphertext", LargeBinary),
    Column("code_hash", String(200)),
    Column("code_expires_at", UTCDateTime),
    Column("code_attempts", Integer, nullable=False, server_default="0"),
    Column("webhook_secret_key_id", String(16)),
    Column("webhook_secret_ciphertext", LargeBinary),
    Column("created_at", UTCDateTime, nullable=False),
    Column("confirmed_at", UTCDateTime),
    Column("ended_at", UTCDateTime),
    Column("updated_at", UTCDateTime, nullable=False),
)

notifications = Table(
    "notifications",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("registration_id", BigId, ForeignKey("registrations.id"), nullable=False),
    # `event` (a custody change), `confirmation` (a double opt-in code), or `delay` and
    # `resumed` (the facility's feed went down, and came back: feed health).
    Column("purpose", String(12), nullable=False),
    Column("event_pk", BigId, ForeignKey("custody_events.id")),
    # What the message says about the event, copied when the event is stored: kind, time,
    # facility and details, never a name (names come from the public view at send time).
    Column("content", JSON, nullable=False),
    # The confirmation code, encrypted like addresses; empty for event messages.
    Column("secret_key_id", String(16)),
    Column("secret_ciphertext", LargeBinary),
    Column("state", String(12), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("deferred_reason", String(30)),
    Column("claimed_by", String(80)),
    Column("claimed_at", UTCDateTime),
    # Stable across retries and crashes: the email Message-ID, the webhook Idempotency-Key.
    Column("idempotency_key", String(64), nullable=False, unique=True),
    Column("provider_message_id", String(200)),
    # What became of it after a provider took it (migration 0018): which provider, when
    # its receipt said it arrived or the registrant confirmed it, the provider's last
    # status and error code, and whether a failure was for good.
    Column("provider", String(60)),
    # The provider chosen for the attempt under way, fixed when it is claimed so a retry
    # after a crash goes the same way (migration 0021; failover).
    Column("sending_via", String(60)),
    Column("delivered_at", UTCDateTime),
    Column("acknowledged_at", UTCDateTime),
    Column("receipt", String(20)),
    Column("error_code", String(12)),
    Column("failed_permanently", Boolean),
    Column("last_error", Text),
    Column("cancel_reason", String(30)),
    # The feed outage a `delay` or `resumed` notice is about (migration 0016).
    Column("outage_id", BigId),
    # The batch whose judgement this waits for (state `held`), if any.
    Column("hold_batch_id", BigId, index=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("registration_id", "event_pk", name="uq_notifications_registration_event"),
    # One notice of each purpose per registration and outage, whoever evaluates. This and
    # the two by provider hold only the rows with their key (migration 0027): an event's
    # alert has none, and took an entry in each when written and again when released.
    Index(
        "uq_notifications_outage",
        "outage_id",
        "registration_id",
        "purpose",
        unique=True,
        postgresql_where=text("outage_id IS NOT NULL"),
        sqlite_where=text("outage_id IS NOT NULL"),
    ),
    Index("ix_notifications_due", "state", "next_attempt_at"),
    Index(
        "ix_notifications_provider_message",
        "provider_message_id",
        postgresql_where=text("provider_message_id IS NOT NULL"),
        sqlite_where=text("provider_message_id IS NOT NULL"),
    ),
    Index(
        "ix_notifications_provider_sent",
        "provider",
        "sent_at",
        postgresql_where=text("sent_at IS NOT NULL"),
        sqlite_where=text("sent_at IS NOT NULL"),
    ),
    # Messages awaiting a receipt, oldest first (migration 0021: failover's resends).
    Index(
        "ix_notifications_awaiting",
        "sent_at",
        postgresql_where=text("state = 'sent'"),
        sqlite_where=text("state = 'sent'"),
    ),
    # What a claim reads, in the order it takes rows (migration 0009).
    Index(
        "ix_notifications_claim",
        "next_attempt_at",
        "id",
        postgresql_where=text("state IN ('queued', 'retrying')"),
        sqlite_where=text("state IN ('queued', 'retrying')"),
    ),
)


# Messages to the agency's operations address (migration 0014): the worker sends them on
# the public path, as it sends notifications; nothing in them names a person.
operations_messages = Table(
    "operations_messages",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("kind", String(20), nullable=False),  # audit_head
    Column("channel", String(10), nullable=False),  # email or webhook
    Column("subject", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column("payload", JSON, nullable=False),
    Column("state", String(12), nullable=False),  # queued, retrying, sending, sent, failed
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("last_error", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    Index("ix_operations_messages_due", "state", "next_attempt_at"),
    Index("ix_operations_messages_kind", "kind", "created_at"),
)

# Every call placed for a voice notification and what became of it (migration 0019): the
# repeats of an unacknowledged call are judged from these.
call_attempts = Table(
    "call_attempts",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("notification_id", BigId, ForeignKey("notifications.id"), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("call_sid", String(200), nullable=False),
    Column("placed_at", UTCDateTime, nullable=False),
    # The provider's last call status, and who answered (`human`, `machine_start`...).
    Column("status", String(20)),
    Column("answered_by", String(30)),
    # no_answer, busy, machine, answered, acknowledged, failed (domain.call_outcome).
    Column("outcome", String(20)),
    Column("pin_tries", Integer, nullable=False, server_default="0"),
    Column("ended_at", UTCDateTime),
    UniqueConstraint("call_sid", name="uq_call_attempts_call_sid"),
    Index("ix_call_attempts_notification", "notification_id"),
)

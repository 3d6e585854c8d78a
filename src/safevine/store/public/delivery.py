"""Working the outbox, on the public path: claim due notifications, hold them while they are
sent, and record what happened. The dispatcher reads people only through the public view.

Claiming commits at once (so a crashed worker's claims expire and are taken again: at
least once). Sending happens inside a second transaction that holds the claimed rows, so a
protection committing meanwhile waits for the sends in flight and cancels everything else.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    Select,
    Update,
    bindparam,
    literal_column,
    select,
    text,
    update,
)

from safevine.store.public.lookup import PublicPerson, by_reference
from safevine.store.public.tables import notifications, registrations

DUE_STATES = ("queued", "retrying")
LEASE = timedelta(minutes=5)


@dataclass(frozen=True)
class Outgoing:
    """A claimed notification with what its registration says about delivery."""

    id: int
    purpose: str
    content: dict[str, Any]
    secret_key_id: str | None
    secret_ciphertext: bytes | None
    attempts: int
    idempotency_key: str
    created_at: datetime
    registration_id: int
    registration_state: str
    person_ref: str
    number: int
    channel: str
    address_key_id: str
    address_ciphertext: bytes
    language: str
    wording: str
    quiet_start: str | None
    quiet_end: str | None
    time_zone: str | None
    allow_voicemail: bool
    manage_token_key_id: str | None
    manage_token_ciphertext: bytes | None
    webhook_secret_key_id: str | None
    webhook_secret_ciphertext: bytes | None


# Spelled out rather than bound, as the partial index ix_notifications_claim is: a planner
# uses that index only when it can see that the query's condition implies the index's.
_IS_DUE = notifications.c.state.in_([literal_column(f"'{s}'") for s in DUE_STATES])
# Rows due, in the order they are taken: read from ix_notifications_claim, so a claim
# touches the rows it takes (and those other workers hold) and no others.
_DUE = (
    select(notifications.c.id)
    .where(_IS_DUE, notifications.c.next_attempt_at <= bindparam("now"))
    .order_by(notifications.c.next_attempt_at, notifications.c.id)
    .limit(bindparam("limit"))
)
# Rows whose worker's lease ran out (it died mid-batch): few, found by ix_notifications_due.
_EXPIRED = (
    select(notifications.c.id)
    .where(
        notifications.c.state == "sending",
        notifications.c.claimed_at < bindparam("expired_before"),
    )
    .order_by(notifications.c.next_attempt_at, notifications.c.id)
    .limit(bindparam("limit"))
)
_CLAIMING = {
    "state": "sending",
    "claimed_by": bindparam("worker"),
    "claimed_at": bindparam("now"),
    "updated_at": bindparam("now"),
}


def _claiming(chosen: Select[Any], locking: bool) -> Update:
    if locking:
        chosen = chosen.with_for_update(skip_locked=True)
    return (
        update(notifications)
        .where(notifications.c.id.in_(chosen.scalar_subquery()))
        .values(**_CLAIMING)
    )


# On PostgreSQL one statement each chooses (skipping rows other workers hold) and marks,
# in one round trip. On SQLite an UPDATE takes the write lock before choosing, so two
# workers can never choose the same rows; a SELECT then reads back what this worker took.
_CLAIM_EXPIRED = _claiming(_EXPIRED, locking=True).returning(notifications.c.id)
_CLAIM_DUE = _claiming(_DUE, locking=True).returning(notifications.c.id)
_SQLITE_CLAIM_EXPIRED = _claiming(_EXPIRED, locking=False)
# SQLite's planner takes the partial index only with statistics (ANALYZE), which nothing
# keeps fresh; without them it reads every due row and sorts them. So it is named here.
_SQLITE_DUE = (
    text(
        "SELECT id FROM notifications INDEXED BY ix_notifications_claim"
        f" WHERE {_IS_DUE.compile(compile_kwargs={'literal_binds': True})}"
        " AND next_attempt_at <= :now ORDER BY next_attempt_at, id LIMIT :limit"
    )
    .bindparams(
        bindparam("now", type_=notifications.c.next_attempt_at.type),
        bindparam("limit", type_=Integer()),
    )
    .columns(notifications.c.id)
)
_SQLITE_CLAIM_DUE = (
    update(notifications)
    .where(notifications.c.id.in_(_SQLITE_DUE.scalar_subquery()))
    .values(**_CLAIMING)
)
_SQLITE_CLAIMED = select(notifications.c.id).where(
    notifications.c.state == "sending",
    notifications.c.claimed_by == bindparam("worker"),
    notifications.c.claimed_at == bindparam("now"),
)


def claim(
    connection: Connection, worker: str, limit: int, now: datetime, lease: timedelta = LEASE
) -> list[int]:
    """Mark up to `limit` due notifications as being sent by `worker`; returns their ids.

    Due: claimed by a worker whose lease ran out (taken first: they are the oldest), or
    queued or retrying with their time come. On PostgreSQL, SKIP LOCKED lets any number
    of workers claim side by side.
    """
    values: dict[str, Any] = {
        "worker": worker,
        "now": now,
        "expired_before": now - lease,
        "limit": limit,
    }
    if connection.dialect.name == "sqlite":
        expired = connection.execute(_SQLITE_CLAIM_EXPIRED, values).rowcount
        if expired < limit:
            connection.execute(_SQLITE_CLAIM_DUE, {**values, "limit": limit - expired})
        return [int(i) for i in connection.execute(_SQLITE_CLAIMED, values).scalars()]
    ids = [int(i) for i in connection.execute(_CLAIM_EXPIRED, values).scalars()]
    if len(ids) < limit:
        due = connection.execute(_CLAIM_DUE, {**values, "limit": limit - len(ids)})
        ids.extend(int(i) for i in due.scalars())
    return ids


def hold(connection: Connection, worker: str, ids: list[int]) -> list[Outgoing]:
    """Lock the claimed rows still ours and still being sent, with their registrations."""
    if not ids:
        return []
    locked = (
        connection.execute(
            select(notifications.c.id)
            .where(
                notifications.c.id.in_(ids),
                notifications.c.state == "sending",
                notifications.c.claimed_by == worker,
            )
            .with_for_update()
        )
        .scalars()
        .all()
    )
    if not locked:
        return []
    # Writing the rows takes SQLite's write lock for the whole send, as FOR UPDATE does
    # on PostgreSQL: a protection has to wait until these sends are recorded.
    if connection.dialect.name == "sqlite":
        connection.execute(
            update(notifications).where(notifications.c.id.in_(locked)).values(claimed_by=worker)
        )
    rows = connection.execute(
        select(
            notifications.c.id,
            notifications.c.purpose,
            notifications.c.content,
            notifications.c.secret_key_id,
            notifications.c.secret_ciphertext,
            notifications.c.attempts,
            notifications.c.idempotency_key,
            notifications.c.created_at,
            notifications.c.registration_id,
            registrations.c.state.label("registration_state"),
            registrations.c.person_ref,
            registrations.c.number,
            registrations.c.channel,
            registrations.c.address_key_id,
            registrations.c.address_ciphertext,
            registrations.c.language,
            registrations.c.wording,
            registrations.c.quiet_start,
            registrations.c.quiet_end,
            registrations.c.time_zone,
            registrations.c.allow_voicemail,
            registrations.c.manage_token_key_id,
            registrations.c.manage_token_ciphertext,
            registrations.c.webhook_secret_key_id,
            registrations.c.webhook_secret_ciphertext,
        )
        .join(registrations, registrations.c.id == notifications.c.registration_id)
        .where(notifications.c.id.in_(locked))
        .order_by(notifications.c.id)
    )
    return [_outgoing(row) for row in rows]


def _outgoing(row: Any) -> Outgoing:
    values = dict(row._mapping)
    values["allow_voicemail"] = bool(values["allow_voicemail"])
    return Outgoing(**values)


def people(connection: Connection, refs: list[str]) -> dict[str, PublicPerson]:
    """The public record of each reference that is public right now; others are absent."""
    return {p.public_ref: p for p in by_reference(connection, refs)}


def _set(connection: Connection, notification_id: int, **values: Any) -> None:
    connection.execute(
        update(notifications).where(notifications.c.id == notification_id).values(**values)
    )


def mark_sent(
    connection: Connection,
    notification_id: int,
    attempts: int,
    provider_id: str | None,
    now: datetime,
) -> None:
    _set(
        connection,
        notification_id,
        state="sent",
        attempts=attempts,
        sent_at=now,
        provider_message_id=provider_id,
        last_error=None,
        deferred_reason=None,
        updated_at=now,
    )


def mark_all_sent(
    connection: Connection, sent: list[tuple[int, int, str | None]], now: datetime
) -> None:
    """`mark_sent` for each (notification id, attempts, provider id), in one executemany:
    a batch's rows are recorded in one round trip instead of one statement each."""
    if not sent:
        return
    statement = (
        update(notifications)
        .where(notifications.c.id == bindparam("sent_id"))
        .values(
            state="sent",
            attempts=bindparam("sent_attempts"),
            sent_at=now,
            provider_message_id=bindparam("sent_provider_id"),
            last_error=None,
            deferred_reason=None,
            updated_at=now,
        )
    )
    connection.execute(
        statement,
        [
            {"sent_id": i, "sent_attempts": attempts, "sent_provider_id": provider_id}
            for i, attempts, provider_id in sent
        ],
    )


def mark_retry(
    connection: Connection,
    notification_id: int,
    attempts: int,
    at: datetime,
    error: str,
    now: datetime,
) -> None:
    _set(
        connection,
        notification_id,
        state="retrying",
        attempts=attempts,
        next_attempt_at=at,
        last_error=error[:2000],
        claimed_by=None,
        updated_at=now,
    )


def mark_failed(
    connection: Connection, notification_id: int, attempts: int, error: str, now: datetime
) -> None:
    _set(
        connection,
        notification_id,
        state="failed",
        attempts=attempts,
        last_error=error[:2000],
        updated_at=now,
    )


def mark_cancelled(
    connection: Connection, notification_id: int, reason: str, now: datetime
) -> None:
    _set(connection, notification_id, state="cancelled", cancel_reason=reason, updated_at=now)


def defer(
    connection: Connection, notification_id: int, until: datetime, reason: str, now: datetime
) -> None:
    """Back to the queue until `until`, with the reason visible in the delivery record."""
    _set(
        connection,
        notification_id,
        state="queued",
        next_attempt_at=until,
        deferred_reason=reason,
        claimed_by=None,
        updated_at=now,
    )

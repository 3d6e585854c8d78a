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

from safevine.domain.notification_state import DUE
from safevine.domain.notification_state import NotificationState as S
from safevine.domain.value_ranges import storable
from safevine.store.public.tables import notifications, registrations
from safevine.store.public.views import public_persons
from safevine.store.row_writes import update_rows

# notifications.provider_message_id is VARCHAR(200).
PROVIDER_ID_LENGTH = 200

DUE_STATES = tuple(s.value for s in DUE)
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
    # The provider this attempt goes through, fixed when it was claimed (None: the
    # channel has one provider, or the pin predates failover).
    sending_via: str | None
    # A voice registration with a PIN: its calls ask for it (never the PIN itself).
    has_pin: bool


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
        notifications.c.state == S.SENDING,
        notifications.c.claimed_at < bindparam("expired_before"),
    )
    .order_by(notifications.c.next_attempt_at, notifications.c.id)
    .limit(bindparam("limit"))
)
_CLAIMING = {
    "state": S.SENDING,
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
        " WHERE state IN ('queued', 'retrying')"
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
    notifications.c.state == S.SENDING,
    notifications.c.claimed_by == bindparam("worker"),
    notifications.c.claimed_at == bindparam("now"),
)


_NO_FLUSH_WAIT = text("SET LOCAL synchronous_commit = off")


def claim(
    connection: Connection, worker: str, limit: int, now: datetime, lease: timedelta = LEASE
) -> list[int]:
    """Mark up to `limit` due notifications as being sent by `worker`; returns their ids.

    Due: claimed by a worker whose lease ran out (taken first: they are the oldest), or
    queued or retrying with their time come. On PostgreSQL, SKIP LOCKED lets any number
    of workers claim side by side. Commit the caller's transaction at once.
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
    # A claim is only a lease: if the server crashed before this commit reached the disk,
    # the rows would simply be due again. So the commit need not wait for the WAL flush
    # (the batch's own commit, which records the sends, still does, and flushes this too).
    connection.execute(_NO_FLUSH_WAIT)
    ids = [int(i) for i in connection.execute(_CLAIM_EXPIRED, values).scalars()]
    if len(ids) < limit:
        due = connection.execute(_CLAIM_DUE, {**values, "limit": limit - len(ids)})
        ids.extend(int(i) for i in due.scalars())
    return ids


def pin_providers(connection: Connection, ids: list[int], via: dict[str, str]) -> None:
    """Fix the provider of each claimed notification's attempt, by channel, unless one is
    fixed already: an attempt a dead worker may have sent goes again the same way, under
    the same key (which a provider that honours keys drops), never through a second
    provider, so at worst one provider has it twice. Call it in the claim's transaction,
    for channels with more than one provider."""
    n, r = notifications, registrations
    for channel, provider in via.items():
        connection.execute(
            update(n)
            .where(
                n.c.id.in_(ids),
                n.c.sending_via.is_(None),
                select(r.c.id)
                .where(r.c.id == n.c.registration_id, r.c.channel == channel)
                .exists(),
            )
            .values(sending_via=provider)
        )


# What `hold` reads for each notification: a field of `Outgoing` each, in its order.
_HOLD_COLUMNS = [
    registrations.c.state.label("registration_state")
    if name == "registration_state"
    else registrations.c.pin_hash.is_not(None).label("has_pin")
    if name == "has_pin"
    else notifications.c[name]
    if name in notifications.c
    else registrations.c[name]
    for name in Outgoing.__dataclass_fields__
]
_VOICEMAIL = list(Outgoing.__dataclass_fields__).index("allow_voicemail")
_OURS = (
    notifications.c.id.in_(bindparam("ids", expanding=True)),
    notifications.c.state == S.SENDING,
    notifications.c.claimed_by == bindparam("worker"),
)
_HOLD = (
    select(*_HOLD_COLUMNS)
    .join(registrations, registrations.c.id == notifications.c.registration_id)
    .where(*_OURS)
    .order_by(notifications.c.id)
)
# PostgreSQL: one statement locks the rows (not their registrations) and reads them.
_HOLD_LOCKING = _HOLD.with_for_update(of=notifications)
# SQLite: writing the rows takes the write lock for the whole send, as FOR UPDATE does on
# PostgreSQL (a protection has to wait until these sends are recorded); written first,
# so everything read after it is read under that lock.
_SQLITE_TAKE = update(notifications).where(*_OURS).values(claimed_by=bindparam("worker"))


def hold(connection: Connection, worker: str, ids: list[int]) -> list[Outgoing]:
    """Lock the claimed rows still ours and still being sent, with their registrations."""
    if not ids:
        return []
    values = {"ids": ids, "worker": worker}
    if connection.dialect.name == "sqlite":
        if not connection.execute(_SQLITE_TAKE, values).rowcount:
            return []
        rows = connection.execute(_HOLD, values)
    else:
        rows = connection.execute(_HOLD_LOCKING, values)
    return [_outgoing(row) for row in rows]


def _outgoing(row: Any) -> Outgoing:
    values = list(row)
    values[_VOICEMAIL] = bool(values[_VOICEMAIL])
    values[-1] = bool(values[-1])  # has_pin
    return Outgoing(*values)


def outgoing(connection: Connection, notification_id: int) -> Outgoing | None:
    """One notification as `hold` reads it, whatever its state (a call's "say it again")."""
    row = connection.execute(
        select(*_HOLD_COLUMNS)
        .join(registrations, registrations.c.id == notifications.c.registration_id)
        .where(notifications.c.id == notification_id)
    ).first()
    return None if row is None else _outgoing(row)


@dataclass(frozen=True)
class PublicName:
    """Who a message names: a person public right now, by their opaque reference."""

    public_ref: str
    given_name: str | None
    family_name: str | None


_PEOPLE = select(
    public_persons.c.public_ref, public_persons.c.given_name, public_persons.c.family_name
).where(public_persons.c.public_ref.in_(bindparam("refs", expanding=True)))


def people(connection: Connection, refs: list[str]) -> dict[str, PublicName]:
    """The name of each reference that is public right now, read through the public view
    (the last gate before a send); references to anyone else are absent."""
    if not refs:
        return {}
    found = connection.execute(_PEOPLE, {"refs": sorted(set(refs))})
    return {ref: PublicName(ref, given, family) for ref, given, family in found}


@dataclass(frozen=True)
class Sent:
    """A provider took a notification: the attempt that did, the provider and its id for
    the message, and whether taking it was already delivery (a webhook's 2xx)."""

    id: int
    attempts: int
    provider_id: str | None
    provider: str | None = None
    delivered: bool = False

    @property
    def state(self) -> S:
        return S.DELIVERED if self.delivered else S.SENT


def _set(connection: Connection, notification_id: int, **values: Any) -> None:
    connection.execute(
        update(notifications).where(notifications.c.id == notification_id).values(**values)
    )


def mark_all_sent(connection: Connection, sent: list[Sent], now: datetime) -> None:
    """Record what providers took, in one statement on PostgreSQL and one executemany on
    SQLite (`store.row_writes`): a batch is recorded in one round trip."""
    update_rows(
        connection,
        notifications,
        "id",
        [
            {
                "id": s.id,
                "attempts": s.attempts,
                # A provider's id is whatever it answered (a webhook receiver's header, say).
                "provider_message_id": (
                    None if s.provider_id is None else storable(s.provider_id, PROVIDER_ID_LENGTH)
                ),
                "provider": s.provider,
                "state": s.state.value,
                "delivered_at": now if s.delivered else None,
            }
            for s in sent
        ],
        {"sent_at": now, "last_error": None, "deferred_reason": None, "updated_at": now},
    )


# A provider's answer is kept with a failure for staff to read: as much of it as this.
ERROR_LENGTH = 2000


def mark_retry(
    connection: Connection,
    notification_id: int,
    attempts: int,
    at: datetime,
    error: str,
    now: datetime,
    via: str | None = None,
) -> None:
    """Try again at `at`; through `via` when given (the attempt failed, so it may now go
    another way), else through whichever provider is first when it is claimed."""
    _set(
        connection,
        notification_id,
        state=S.RETRYING,
        attempts=attempts,
        next_attempt_at=at,
        last_error=storable(error, ERROR_LENGTH),
        claimed_by=None,
        sending_via=via,
        updated_at=now,
    )


def mark_failed(
    connection: Connection, notification_id: int, attempts: int, error: str, now: datetime
) -> None:
    _set(
        connection,
        notification_id,
        state=S.FAILED,
        attempts=attempts,
        last_error=storable(error, ERROR_LENGTH),
        updated_at=now,
    )


def mark_cancelled(
    connection: Connection, notification_id: int, reason: str, now: datetime
) -> None:
    _set(connection, notification_id, state=S.CANCELLED, cancel_reason=reason, updated_at=now)


def defer(
    connection: Connection, notification_id: int, until: datetime, reason: str, now: datetime
) -> None:
    """Back to the queue until `until`, with the reason visible in the delivery record."""
    _set(
        connection,
        notification_id,
        state=S.QUEUED,
        next_attempt_at=until,
        deferred_reason=reason,
        claimed_by=None,
        updated_at=now,
    )

"""What became of a notification after a provider took it: the provider's receipts and the
registrant's acknowledgement, each moving it to the state that tells the truth
(`domain.notification_state`).

Every change is a conditional update from the state it leaves, so a receipt applied twice,
two receipts racing, or one arriving after a later one changes nothing more. A receipt
finds its notification by the provider's id of the attempt it reports: a late receipt of
an earlier attempt (the message was sent again since, under a new id) finds nothing.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import ColumnElement, Connection, select, update

from safevine.contact_vault import ContactVault
from safevine.domain.contact_address import Channel
from safevine.domain.notification_state import (
    ABOUT_A_PERSON,
    DELIVERED_RECEIPTS,
    FAILED_RECEIPTS,
    IN_FLIGHT_RECEIPTS,
)
from safevine.domain.notification_state import NotificationState as S
from safevine.domain.provider_errors import Outcome, classify
from safevine.domain.value_ranges import storable
from safevine.store.planner_hints import unindexed
from safevine.store.public.registrations import ACTIVE, BY_CARRIER_STOP, end_by_index
from safevine.store.public.tables import notifications, registrations

RECEIPT_LENGTH = 20
# A receipt can overtake the worker's record of the message it reports (a busy line or a
# refused number answers in milliseconds): it is looked for again this often before it
# is let go.
LOOKS, LOOK_EVERY = 10, 0.2
ERROR_LENGTH = 2000


class Applied(StrEnum):
    """What a receipt did, for the caller's counts (never shown to whoever sent it)."""

    DELIVERED = "delivered"
    RETRYING = "retrying"
    FAILED = "failed"
    ENDED = "registration_ended"
    NOTED = "noted"  # still on its way: the status is kept
    IGNORED = "ignored"  # unknown id, unknown status, or the notification has moved on


@dataclass(frozen=True)
class Receipt:
    provider_message_id: str
    status: str
    error_code: str | None = None


def apply_receipt(
    connection: Connection,
    receipt: Receipt,
    now: datetime,
    retry_after: Callable[[int], timedelta | None],
) -> Applied:
    """Apply one receipt. `retry_after(attempts)` is the delay before the next attempt of
    a message that failed for now, None once out of tries."""
    status = receipt.status.strip().lower()[:RECEIPT_LENGTH]
    sid = receipt.provider_message_id.strip()
    if not sid:
        return Applied.IGNORED
    n = notifications
    sent = awaiting_receipt(sid)
    if status in IN_FLIGHT_RECEIPTS:
        done = connection.execute(update(n).where(sent).values(receipt=status, updated_at=now))
        return Applied.NOTED if done.rowcount else Applied.IGNORED
    if status in DELIVERED_RECEIPTS:
        done = connection.execute(
            update(n)
            .where(sent)
            .values(state=S.DELIVERED, delivered_at=now, receipt=status, updated_at=now)
        )
        return Applied.DELIVERED if done.rowcount else Applied.IGNORED
    if status not in FAILED_RECEIPTS:
        return Applied.IGNORED
    row = connection.execute(
        select(
            n.c.id,
            n.c.attempts,
            n.c.idempotency_key,
            registrations.c.address_index,
            registrations.c.channel,
        )
        .join(registrations, registrations.c.id == n.c.registration_id)
        .where(sent)
    ).first()
    if row is None:
        return Applied.IGNORED
    error = classify(receipt.error_code)
    delay = None if error.permanent else retry_after(int(row.attempts))
    values: dict[str, object] = {
        "receipt": status,
        "error_code": error.code or None,
        "last_error": storable(error.describe(), ERROR_LENGTH),
        "updated_at": now,
    }
    if delay is not None:
        values.update(send_again(row.idempotency_key, int(row.attempts), now + delay))
    else:
        values.update(state=S.FAILED, failed_permanently=error.permanent)
    done = connection.execute(
        update(n).where(n.c.id == row.id, n.c.state == S.SENT).values(**values)
    )
    if not done.rowcount:
        return Applied.IGNORED
    if error.outcome == Outcome.END_REGISTRATION:
        end_by_index(connection, row.address_index, Channel(row.channel), BY_CARRIER_STOP, now)
        return Applied.ENDED
    return Applied.RETRYING if delay is not None else Applied.FAILED


def awaiting_receipt(sid: str) -> ColumnElement[bool]:
    """The message taken under provider id `sid`, while it awaits its receipt: found by
    that id, never by its state (`store.planner_hints`)."""
    n = notifications
    return (n.c.provider_message_id == sid) & (unindexed(n.c.state) == S.SENT)


def known(connection: Connection, provider_message_id: str) -> bool:
    """Whether a notification was recorded as taken under this provider id."""
    sid = provider_message_id.strip()[:200]
    return bool(sid) and (
        connection.execute(
            select(notifications.c.id).where(notifications.c.provider_message_id == sid).limit(1)
        ).first()
        is not None
    )


def next_key(key: str, attempts: int) -> str:
    """The key of the attempt after `attempts`, when the last one was taken and lost."""
    return f"{key.split('.')[0][:48]}.{attempts}"


def send_again(key: str, attempts: int, at: datetime, via: str | None = None) -> dict[str, object]:
    """The values that send a message a provider took and lost once more, at `at`: as a
    new message, under a new key (a provider that honours keys drops a repeated one), through
    `via` or whichever provider is first when it is claimed."""
    return {
        "state": S.RETRYING,
        "next_attempt_at": at,
        "claimed_by": None,
        "sending_via": via,
        "idempotency_key": next_key(key, attempts),
    }


def acknowledge_latest(
    connection: Connection, address_index: str, channel: Channel, now: datetime
) -> int | None:
    """The registrant confirmed the latest message about a person that reached this
    address on this channel (an SMS reply of YES): it is acknowledged. Its id, or None
    when there was nothing to acknowledge."""
    n, r = notifications, registrations
    latest = connection.execute(
        select(n.c.id)
        .join(r, r.c.id == n.c.registration_id)
        .where(
            r.c.address_index == address_index,
            r.c.channel == channel.value,
            r.c.state == ACTIVE,
            n.c.purpose.in_(ABOUT_A_PERSON),
            # From the number's registrations, never from every message sent.
            unindexed(n.c.state).in_((S.SENT, S.DELIVERED)),
        )
        .order_by(n.c.sent_at.desc(), n.c.id.desc())
        .limit(1)
    ).scalar()
    if latest is None:
        return None
    done = connection.execute(
        update(n)
        .where(n.c.id == latest, n.c.state.in_((S.SENT, S.DELIVERED)))
        .values(state=S.ACKNOWLEDGED, acknowledged_at=now, updated_at=now)
    )
    return int(latest) if done.rowcount else None


def apply_bounce(
    connection: Connection,
    key: str,
    permanent: bool,
    now: datetime,
    retry_after: Callable[[int], timedelta | None],
) -> Applied:
    """A bounce for the email sent under `key` (its return path's): a hard one fails the
    notification for good and marks the registration's address as bouncing; a soft one
    (a full mailbox, a server down for now) sends it again as a new message."""
    n = notifications
    row = connection.execute(
        select(n.c.id, n.c.attempts, n.c.idempotency_key, n.c.registration_id).where(
            n.c.idempotency_key == key, n.c.state.in_((S.SENT, S.DELIVERED))
        )
    ).first()
    if row is None:
        return Applied.IGNORED
    delay = None if permanent else retry_after(int(row.attempts))
    reason = "the mail bounced: " + (
        "the mailbox does not exist or refuses it" if permanent else "not delivered for now"
    )
    values: dict[str, object] = {"receipt": "bounced", "last_error": reason, "updated_at": now}
    if delay is not None:
        values.update(send_again(row.idempotency_key, int(row.attempts), now + delay))
    else:
        values.update(state=S.FAILED, failed_permanently=permanent, delivered_at=None)
    done = connection.execute(
        update(n).where(n.c.id == row.id, n.c.state.in_((S.SENT, S.DELIVERED))).values(**values)
    )
    if not done.rowcount:
        return Applied.IGNORED
    if permanent:
        connection.execute(
            update(registrations)
            .where(registrations.c.id == row.registration_id)
            .values(bounced_at=now, updated_at=now)
        )
    return Applied.RETRYING if delay is not None else Applied.FAILED


def acknowledge_key(connection: Connection, key: str, now: datetime) -> bool:
    """The registrant followed the email's "I got this" link for the attempt sent under
    `key` and said so: that message is acknowledged."""
    n = notifications
    done = connection.execute(
        update(n)
        .where(
            n.c.idempotency_key == key,
            n.c.purpose.in_(ABOUT_A_PERSON),
            n.c.state.in_((S.SENT, S.DELIVERED)),
        )
        .values(state=S.ACKNOWLEDGED, acknowledged_at=now, receipt="link", updated_at=now)
    )
    return bool(done.rowcount)


def webhook_secret_of(connection: Connection, vault: ContactVault, key: str) -> str | None:
    """The webhook secret of the registration the message sent under `key` went to."""
    row = connection.execute(
        select(registrations.c.webhook_secret_key_id, registrations.c.webhook_secret_ciphertext)
        .join(notifications, notifications.c.registration_id == registrations.c.id)
        .where(
            notifications.c.idempotency_key == key,
            registrations.c.channel == Channel.WEBHOOK.value,
        )
    ).first()
    if row is None or not row.webhook_secret_key_id or row.webhook_secret_ciphertext is None:
        return None
    return vault.decrypt(row.webhook_secret_key_id, row.webhook_secret_ciphertext, "webhook")

"""What provider failover reads and writes, on the public path: how each provider's recent
texts were receipted, and messages with no receipt sent again through another provider.

A message is sent through a second provider only after its first attempt is judged lost:
no receipt within the wait, and then under a new key, so a late receipt of the first
attempt finds nothing (`receipts.apply_receipt`).
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, literal_column, select, update

from safevine.domain.contact_address import Channel
from safevine.domain.notification_state import NotificationState as S
from safevine.store.public.receipts import send_again
from safevine.store.public.tables import notifications, registrations

# Enough recent texts to judge a provider's share of late receipts by.
SAMPLE = 2000
# A message with no receipt this long past the wait is not sent again: too late to help.
HORIZON = timedelta(hours=24)
# The most messages one sweep sends again; the next sweep takes the rest.
SWEEP = 500
# `receipt` of a message given up on: sent again nowhere (no other provider, no tries left).
GAVE_UP = "no-receipt"
RECEIPTED_CHANNELS = (Channel.SMS.value, Channel.VOICE.value)
# Spelled out, as in the partial index ix_notifications_awaiting, for the planner to use it.
_AWAITING = notifications.c.state == literal_column(f"'{S.SENT.value}'")


@dataclass(frozen=True)
class ReceiptTimes:
    """Of a provider's recent texts old enough to judge: how many, how many late."""

    taken: int
    slow: int


def receipt_times(
    connection: Connection, provider: str, since: datetime, slow_after: timedelta, now: datetime
) -> ReceiptTimes:
    """How the texts `provider` took since `since` were receipted (the latest `SAMPLE`):
    slow is a receipt later than `slow_after`, or none though that long has passed."""
    n, r = notifications, registrations
    recent = (
        select(n.c.registration_id, n.c.state, n.c.sent_at, n.c.delivered_at)
        .where(n.c.provider == provider, n.c.sent_at >= since)
        .order_by(n.c.sent_at.desc())
        .limit(SAMPLE)
        .subquery()
    )
    rows = connection.execute(
        select(recent.c.state, recent.c.sent_at, recent.c.delivered_at)
        .join(r, r.c.id == recent.c.registration_id)
        .where(r.c.channel == Channel.SMS.value)
    )
    taken = slow = 0
    for state, sent_at, delivered_at in rows:
        if delivered_at is not None:
            taken += 1
            slow += delivered_at - sent_at > slow_after
        elif sent_at <= now - slow_after:
            taken += 1
            slow += state == S.SENT
    return ReceiptTimes(taken, slow)


def send_unreceipted_again(
    connection: Connection,
    providers: tuple[str, ...],
    now: datetime,
    wait: timedelta,
    another: Callable[[str, str], str | None],
    retry_after: Callable[[int], timedelta | None],
) -> int:
    """Texts and calls one of `providers` took more than `wait` ago with no receipt since,
    each sent again through `another(channel, provider)` (None: there is none) under a new
    key; the rest are marked given up. Returns how many go again."""
    n, r = notifications, registrations
    cutoff = now - wait
    rows = connection.execute(
        select(
            n.c.id,
            n.c.provider,
            n.c.provider_message_id,
            n.c.attempts,
            n.c.idempotency_key,
            r.c.channel,
        )
        .join(r, r.c.id == n.c.registration_id)
        .where(
            _AWAITING,
            n.c.sent_at < cutoff,
            n.c.sent_at >= cutoff - HORIZON,
            n.c.provider.in_(providers),
            r.c.channel.in_(RECEIPTED_CHANNELS),
            (n.c.receipt.is_(None)) | (n.c.receipt != GAVE_UP),
        )
        .order_by(n.c.sent_at)
        .limit(SWEEP)
    ).all()
    again = 0
    for row in rows:
        via = another(row.channel, row.provider)
        delay = retry_after(int(row.attempts)) if via is not None else None
        unchanged = (
            (n.c.id == row.id)
            & (n.c.state == S.SENT)
            & (n.c.provider_message_id == row.provider_message_id)
        )
        if via is None or delay is None:
            connection.execute(update(n).where(unchanged).values(receipt=GAVE_UP, updated_at=now))
            continue
        done = connection.execute(
            update(n)
            .where(unchanged)
            .values(
                **send_again(row.idempotency_key, int(row.attempts), now, via),
                last_error=f"no receipt from {row.provider} within {wait}; sent through {via}",
                updated_at=now,
            )
        )
        again += done.rowcount
    return again

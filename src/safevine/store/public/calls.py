"""Calls as the provider reports them: each attempt recorded with its outcome, the PIN
checked when the registrant enters it, and an unconfirmed call placed again by the rule in
`domain.call_repeats`.

A call is found by the provider's id for it (the notification's `provider_message_id`
for its latest attempt). Every change is conditional on the state it leaves, so a
callback applied twice changes nothing more.

A worker can die after the provider took a call and before it recorded the provider's
id: the call rings all the same, and its callbacks name the attempt by its idempotency
key (`key` in their URL; `notify/voice_script.py`). The first of them records the attempt
as the worker would have (`_adopt`), so the cycle goes on from the call the registrant
got, and the claim the worker left is not placed again when its lease runs out.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from safevine.domain.call_pin import REPLAY
from safevine.domain.call_repeats import CallOutcome, RepeatRules, outcome_of, reached
from safevine.domain.contact_address import Channel
from safevine.domain.notification_state import ABOUT_A_PERSON
from safevine.domain.notification_state import NotificationState as S
from safevine.domain.provider_errors import classify
from safevine.domain.value_ranges import storable
from safevine.store.public.receipts import Applied, send_again
from safevine.store.public.registrations import pin_matches
from safevine.store.public.tables import call_attempts, notifications, registrations

STATUS_LENGTH = 20


class Pressed(StrEnum):
    ACKNOWLEDGED = "acknowledged"
    WRONG = "wrong"
    REPLAY = "replay"
    UNKNOWN = "unknown"  # no call of ours awaiting a PIN under that id


@dataclass(frozen=True)
class Gathered:
    pressed: Pressed
    notification_id: int | None = None
    language: str = "en"


def _call(connection: Connection, call_sid: str) -> Any:
    n, r = notifications, registrations
    return connection.execute(
        select(
            n.c.id,
            n.c.state,
            n.c.attempts,
            n.c.sent_at,
            n.c.idempotency_key,
            n.c.purpose,
            r.c.pin_hash,
            r.c.language,
            r.c.allow_voicemail,
        )
        .join(r, r.c.id == n.c.registration_id)
        .where(n.c.provider_message_id == call_sid, r.c.channel == Channel.VOICE.value)
    ).first()


def _adopt(
    connection: Connection, call_sid: str, key: str | None, provider: str | None, now: datetime
) -> None:
    """Record a call the provider reports under `key` as that attempt's, when the worker
    that asked for it never did: its notification is still claimed (`sending`) under
    that key. Recorded as the worker records a send (`delivery.mark_all_sent`), placed
    when it was claimed, through the provider the claim fixed or else `provider` (the
    first). A live worker holds its claimed rows locked while it sends, so this waits
    for its record, and then finds the notification no longer claimed: nothing to do."""
    if not key or not call_sid or _call(connection, call_sid) is not None:
        return
    n, r = notifications, registrations
    connection.execute(
        update(n)
        .where(
            n.c.idempotency_key == key[:64],
            n.c.state == S.SENDING,
            select(r.c.id)
            .where(r.c.id == n.c.registration_id, r.c.channel == Channel.VOICE.value)
            .exists(),
        )
        .values(
            state=S.SENT,
            attempts=n.c.attempts + 1,
            provider_message_id=call_sid,
            provider=func.coalesce(n.c.sending_via, provider),
            sent_at=n.c.claimed_at,
            last_error=None,
            deferred_reason=None,
            updated_at=now,
        )
    )


def _attempt(connection: Connection, row: Any, call_sid: str, now: datetime) -> Any:
    """The attempt's record, made at the provider's first word about it."""
    found = connection.execute(
        select(call_attempts).where(call_attempts.c.call_sid == call_sid)
    ).first()
    if found is not None:
        return found
    connection.execute(
        insert(call_attempts).values(
            notification_id=row.id,
            attempt=int(row.attempts),
            call_sid=call_sid,
            placed_at=row.sent_at or now,
        )
    )
    return connection.execute(
        select(call_attempts).where(call_attempts.c.call_sid == call_sid)
    ).first()


def record_status(
    connection: Connection,
    call_sid: str,
    status: str,
    answered_by: str | None,
    error_code: str | None,
    now: datetime,
    rules: RepeatRules,
    retry_after: Callable[[int], timedelta | None],
    key: str | None = None,
    provider: str | None = None,
) -> Applied:
    """The provider's status for a call: the attempt's outcome recorded and, once the
    call is over and nobody confirmed it, the notification repeated, or ended as
    delivered (someone was reached) or failed. `key` is the attempt's idempotency key
    as the callback's URL gives it (see `_adopt`)."""
    call_sid, status = call_sid.strip()[:200], status.strip().lower()[:STATUS_LENGTH]
    answered_by = answered_by.strip().lower()[:30] if answered_by else None
    _adopt(connection, call_sid, key, provider, now)
    row = _call(connection, call_sid) if call_sid else None
    if row is None:
        return Applied.IGNORED
    attempt = _attempt(connection, row, call_sid, now)
    outcome = outcome_of(status, answered_by)
    if attempt.outcome == CallOutcome.ACKNOWLEDGED:
        outcome = CallOutcome.ACKNOWLEDGED
    connection.execute(
        update(call_attempts)
        .where(call_attempts.c.id == attempt.id)
        .values(
            status=status,
            answered_by=answered_by or attempt.answered_by,
            outcome=outcome.value if outcome else attempt.outcome,
            ended_at=now if outcome else None,
        )
    )
    sent = (notifications.c.id == row.id) & (notifications.c.state == S.SENT)
    if outcome is None:
        connection.execute(update(notifications).where(sent).values(receipt=status))
        return Applied.NOTED
    if outcome == CallOutcome.ACKNOWLEDGED:
        return Applied.IGNORED
    values: dict[str, Any] = {"receipt": status, "updated_at": now}
    error = classify(error_code) if outcome == CallOutcome.FAILED else None
    asked_for_pin = bool(row.pin_hash) and row.purpose in ABOUT_A_PERSON
    if asked_for_pin:
        first = connection.execute(
            select(func.min(call_attempts.c.placed_at)).where(
                call_attempts.c.notification_id == row.id
            )
        ).scalar()
        # A call the provider could not place for now is repeated as one nobody answered.
        retried = CallOutcome.NO_ANSWER if outcome == CallOutcome.FAILED else outcome
        again = None if error and error.permanent else rules.next_call(retried, first or now, now)
    else:
        # A call that asks for no PIN (a confirmation code, a registration made before
        # PINs) reached someone when it was answered; otherwise it is tried again.
        delivered = outcome == CallOutcome.ANSWERED or (
            outcome == CallOutcome.MACHINE and bool(row.allow_voicemail)
        )
        if delivered:
            values.update(state=S.DELIVERED, delivered_at=now)
            done = connection.execute(update(notifications).where(sent).values(**values))
            return Applied.DELIVERED if done.rowcount else Applied.IGNORED
        delay = None if error and error.permanent else retry_after(int(row.attempts))
        again = now + delay if delay is not None else None
    if error is not None:
        values.update(error_code=error.code or None, last_error=storable(error.describe(), 2000))
    if again is not None:
        values.update(send_again(row.idempotency_key, int(row.attempts), again))
        applied = Applied.RETRYING
    elif asked_for_pin and (error is None or not error.permanent) and _reached(connection, row):
        values.update(state=S.DELIVERED, delivered_at=now)
        applied = Applied.DELIVERED
    else:
        values.update(state=S.FAILED, failed_permanently=bool(error and error.permanent))
        if error is None:
            values["last_error"] = (
                "nobody confirmed the call with the PIN in time"
                if asked_for_pin
                else "the call was not answered"
            )
        applied = Applied.FAILED
    done = connection.execute(update(notifications).where(sent).values(**values))
    return applied if done.rowcount else Applied.IGNORED


def _reached(connection: Connection, row: Any) -> bool:
    outcomes = [
        CallOutcome(o)
        for o in connection.execute(
            select(call_attempts.c.outcome).where(
                call_attempts.c.notification_id == row.id, call_attempts.c.outcome.is_not(None)
            )
        ).scalars()
    ]
    return reached(outcomes, bool(row.allow_voicemail))


def gather(
    connection: Connection,
    call_sid: str,
    digits: str,
    now: datetime,
    key: str | None = None,
    provider: str | None = None,
) -> Gathered:
    """What the registrant pressed during a call: their PIN acknowledges the notification,
    9 asks to hear it again, anything else is a wrong PIN (counted on the attempt).
    `key` is the attempt's idempotency key as the callback's URL gives it (`_adopt`)."""
    call_sid = call_sid.strip()[:200]
    _adopt(connection, call_sid, key, provider, now)
    row = _call(connection, call_sid) if call_sid else None
    if row is None or row.state != S.SENT or not row.pin_hash or row.purpose not in ABOUT_A_PERSON:
        return Gathered(Pressed.UNKNOWN)
    attempt = _attempt(connection, row, call_sid, now)
    pressed = digits.strip().rstrip("#")[:12]
    if pressed == REPLAY:
        return Gathered(Pressed.REPLAY, int(row.id), row.language)
    if pressed and pin_matches(row.pin_hash, pressed):
        done = connection.execute(
            update(notifications)
            .where(notifications.c.id == row.id, notifications.c.state == S.SENT)
            .values(state=S.ACKNOWLEDGED, acknowledged_at=now, receipt="pin", updated_at=now)
        )
        connection.execute(
            update(call_attempts)
            .where(call_attempts.c.id == attempt.id)
            .values(outcome=CallOutcome.ACKNOWLEDGED.value, answered_by="human")
        )
        if done.rowcount:
            return Gathered(Pressed.ACKNOWLEDGED, int(row.id), row.language)
        return Gathered(Pressed.UNKNOWN)
    connection.execute(
        update(call_attempts)
        .where(call_attempts.c.id == attempt.id)
        .values(pin_tries=call_attempts.c.pin_tries + 1)
    )
    return Gathered(Pressed.WRONG, int(row.id), row.language)


def attempts(connection: Connection, notification_id: int) -> list[Any]:
    """Every call placed for a notification, oldest first."""
    return list(
        connection.execute(
            select(call_attempts)
            .where(call_attempts.c.notification_id == notification_id)
            .order_by(call_attempts.c.id)
        )
    )

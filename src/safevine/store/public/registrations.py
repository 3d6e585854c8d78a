"""The registration lifecycle, on the public path: start (double opt-in), confirm, look up,
end. Every answer is the same whether the person is public, non-public or unknown; the
difference shows only later, as the one generic status "this record is no longer available".
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, insert, select, update

from safevine.contact_vault import ContactVault
from safevine.domain.contact_address import Channel
from safevine.domain.notification_state import UNSENT as NOTIFICATION_UNSENT
from safevine.domain.notification_state import NotificationState as S
from safevine.domain.quiet_hours import QuietHours
from safevine.store.public.tables import notifications, registrations
from safevine.store.public.views import public_persons

CODE_TTL = timedelta(minutes=30)
MAX_CODE_ATTEMPTS = 5
# Codes are short, so the hash is slow; these are OWASP's minimums for Argon2id.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)

# Every state a notification can be in before it is sent; ending or protecting stops all.
UNSENT = tuple(s.value for s in NOTIFICATION_UNSENT)
PENDING = "pending_confirmation"
ACTIVE = "active"
ENDED = "ended"
# End reasons. `record_unavailable` covers protection, aging out and purge alike.
RECORD_UNAVAILABLE = "record_unavailable"
BY_REGISTRANT = "registrant_ended"
BY_SMS_STOP = "sms_stop"
# The carrier reports the recipient opted out (provider error 21610).
BY_CARRIER_STOP = "carrier_stop"
# A newer registration of the same address for the same person was confirmed.
REPLACED = "replaced"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class RegistrationRequest:
    person_ref: str
    channel: Channel
    address: str  # canonical
    address_hint: str
    language: str
    wording: str
    events: tuple[str, ...]
    quiet_hours: QuietHours | None = None
    allow_voicemail: bool = True
    # A voice registrant's 4-digit PIN (`domain.call_pin`), kept only as a hash.
    pin: str | None = None


@dataclass(frozen=True)
class Started:
    """What the registrant gets back: a token to confirm with. Always the same shape."""

    pending_token: str
    expires_at: datetime


def is_public_ref(connection: Connection, person_ref: str) -> bool:
    found = connection.execute(
        select(public_persons.c.public_ref).where(public_persons.c.public_ref == person_ref)
    ).first()
    return found is not None


def start(
    connection: Connection, vault: ContactVault, request: RegistrationRequest, now: datetime
) -> Started:
    """Create a pending registration and queue its confirmation code.

    Always the same work, whatever that address already has for that person (nothing, a
    pending registration, an active one, an ended one): no existing registration is even
    looked at, so neither the time taken nor what follows (the code message, the pending
    token's answers to wrong codes) tells a stranger whether a contact follows a person.
    Duplicates are settled at confirmation (see `confirm`), by whoever holds the code.
    """
    index = vault.blind_index(request.channel.value, request.address)
    pending_token = secrets.token_urlsafe(24)
    expires_at = now + CODE_TTL
    code = f"{secrets.randbelow(10**6):06d}"
    values: dict[str, Any] = {
        "language": request.language,
        "wording": request.wording,
        "events": list(request.events),
        "quiet_start": request.quiet_hours.start.strftime("%H:%M") if request.quiet_hours else None,
        "quiet_end": request.quiet_hours.end.strftime("%H:%M") if request.quiet_hours else None,
        "time_zone": request.quiet_hours.zone if request.quiet_hours else None,
        "allow_voicemail": int(request.allow_voicemail),
        "pin_hash": _hasher.hash(request.pin) if request.pin else None,
        "pending_token_hash": token_hash(pending_token),
        "code_hash": _hasher.hash(code),
        "code_expires_at": expires_at,
        "code_attempts": 0,
        "updated_at": now,
    }
    key_id, ciphertext = vault.encrypt(request.address, "address")
    registration_id = int(
        connection.execute(
            insert(registrations)
            .values(
                person_ref=request.person_ref,
                number=100000 + secrets.randbelow(900000),
                channel=request.channel.value,
                address_key_id=key_id,
                address_ciphertext=ciphertext,
                address_index=index,
                address_hint=request.address_hint,
                state=PENDING,
                # Replaced at confirmation; until then it opens nothing.
                manage_token_hash=token_hash(secrets.token_urlsafe(32)),
                created_at=now,
                **values,
            )
            .returning(registrations.c.id)
        ).scalar_one()
    )
    code_key, code_ciphertext = vault.encrypt(code, "code")
    connection.execute(
        insert(notifications).values(
            registration_id=registration_id,
            purpose="confirmation",
            content={},
            secret_key_id=code_key,
            secret_ciphertext=code_ciphertext,
            state=S.QUEUED,
            next_attempt_at=now,
            idempotency_key=secrets.token_hex(16),
            created_at=now,
            updated_at=now,
        )
    )
    return Started(pending_token, expires_at)


@dataclass(frozen=True)
class Confirmed:
    manage_token: str
    webhook_secret: str | None


@dataclass(frozen=True)
class ConfirmationRefused:
    """`invalid`, `expired` or `too_many`; never whether a person exists."""

    reason: str


def confirm(
    connection: Connection, vault: ContactVault, pending_token: str, code: str, now: datetime
) -> Confirmed | ConfirmationRefused:
    """Activate the registration whose code this is, or say why not.

    The same address for the same person on the same channel is one registration: the
    one confirmed last replaces the others (see `_supersede`), so registering again and
    confirming is how a registrant changes language, wording or quiet hours.

    The error is returned, not raised, so the caller commits the counted attempt.
    """
    row = _locked(connection, token_hash(pending_token))
    if row is None or row.state != PENDING or row.code_hash is None:
        # Still hash, so a wrong token costs what a wrong code costs.
        _hasher.hash(code or "0")
        return ConfirmationRefused("invalid")
    if row.code_expires_at is None or row.code_expires_at < now:
        return ConfirmationRefused("expired")
    if row.code_attempts >= MAX_CODE_ATTEMPTS:
        return ConfirmationRefused("too_many")
    try:
        _hasher.verify(row.code_hash, code.strip())
    except VerificationError:
        attempts = row.code_attempts + 1
        connection.execute(
            update(registrations)
            .where(registrations.c.id == row.id)
            .values(code_attempts=attempts, updated_at=now)
        )
        return ConfirmationRefused("too_many" if attempts >= MAX_CODE_ATTEMPTS else "invalid")
    # 128 bits, and short enough that the manage link fits in one SMS segment.
    manage_token = secrets.token_urlsafe(16)
    manage_key, manage_ciphertext = vault.encrypt(manage_token, "manage")
    webhook_secret = secrets.token_urlsafe(32) if row.channel == Channel.WEBHOOK else None
    secret_values: dict[str, Any] = {}
    if webhook_secret is not None:
        key_id, ciphertext = vault.encrypt(webhook_secret, "webhook")
        secret_values = {"webhook_secret_key_id": key_id, "webhook_secret_ciphertext": ciphertext}
    public = is_public_ref(connection, row.person_ref)
    number = _supersede(connection, row, now) if public else None
    connection.execute(
        update(registrations)
        .where(registrations.c.id == row.id)
        .values(
            number=number or row.number,
            state=ACTIVE if public else ENDED,
            end_reason=None if public else RECORD_UNAVAILABLE,
            ended_at=None if public else now,
            confirmed_at=now,
            code_hash=None,
            manage_token_hash=token_hash(manage_token),
            manage_token_key_id=manage_key,
            manage_token_ciphertext=manage_ciphertext,
            updated_at=now,
            **secret_values,
        )
    )
    return Confirmed(manage_token, webhook_secret)


def _same_key(row: Any) -> Any:
    """The registrations of the same address, person and channel still open."""
    return (
        registrations.c.address_index == row.address_index,
        registrations.c.person_ref == row.person_ref,
        registrations.c.channel == row.channel,
        registrations.c.state != ENDED,
    )


def _locked(connection: Connection, pending_hash: str) -> Any:
    """The registration of this pending token, with every open one of the same key locked
    first, in id order: two confirmations for one address and person then take turns
    instead of deadlocking, and the second sees what the first did."""
    found = connection.execute(
        select(registrations).where(registrations.c.pending_token_hash == pending_hash)
    ).first()
    if found is None:
        return None
    connection.execute(
        select(registrations.c.id)
        .where(*_same_key(found))
        .order_by(registrations.c.id)
        .with_for_update()
    ).all()
    return connection.execute(
        select(registrations).where(registrations.c.id == found.id).with_for_update()
    ).first()


def _supersede(connection: Connection, row: Any, now: datetime) -> int | None:
    """End the other open registrations of `row`'s address, person and channel as
    `replaced`: an active one hands its unsent messages to `row` (each is still sent once,
    by the new settings) and its number, which the registrant knows from discreet
    messages; a pending one's code stops working. Returns the number to keep, if any."""
    others = connection.execute(
        select(registrations.c.id, registrations.c.state, registrations.c.number)
        .where(*_same_key(row), registrations.c.id != row.id)
        .order_by(registrations.c.id)
    ).all()
    number = None
    for other in others:
        if other.state == ACTIVE:
            number = int(other.number)
            connection.execute(
                update(notifications)
                .where(
                    notifications.c.registration_id == other.id,
                    # A message a live worker is sending is locked: this waits for its
                    # batch, then finds it sent and leaves it. One a dead worker left
                    # `sending` moves, and is claimed again when its lease runs out.
                    notifications.c.state.in_(UNSENT),
                )
                .values(registration_id=row.id, updated_at=now)
            )
        end_registration(connection, int(other.id), REPLACED, now)
    return number


@dataclass(frozen=True)
class RegistrationView:
    number: int
    channel: str
    address_hint: str
    language: str
    wording: str
    events: list[str]
    quiet_start: str | None
    quiet_end: str | None
    time_zone: str | None
    allow_voicemail: bool
    state: str
    end_reason: str | None
    created_at: datetime
    confirmed_at: datetime | None
    ended_at: datetime | None
    # Mail to the address bounced for good since (its last message did not arrive).
    bounced_at: datetime | None = None


def by_manage_token(connection: Connection, token: str, now: datetime) -> RegistrationView | None:
    """The registration, ending it first if its person is no longer public."""
    row = connection.execute(
        select(registrations).where(registrations.c.manage_token_hash == token_hash(token))
    ).first()
    if row is None or row.confirmed_at is None:
        return None
    if row.state == ACTIVE and not is_public_ref(connection, row.person_ref):
        end_registration(connection, int(row.id), RECORD_UNAVAILABLE, now)
        row = connection.execute(select(registrations).where(registrations.c.id == row.id)).one()
    return RegistrationView(
        number=row.number,
        channel=row.channel,
        address_hint=row.address_hint,
        language=row.language,
        wording=row.wording,
        events=list(row.events),
        quiet_start=row.quiet_start,
        quiet_end=row.quiet_end,
        time_zone=row.time_zone,
        allow_voicemail=bool(row.allow_voicemail),
        state=row.state,
        end_reason=row.end_reason,
        created_at=row.created_at,
        confirmed_at=row.confirmed_at,
        ended_at=row.ended_at,
        bounced_at=row.bounced_at,
    )


def person_ref_of(connection: Connection, manage_token: str) -> str:
    return str(
        connection.execute(
            select(registrations.c.person_ref).where(
                registrations.c.manage_token_hash == token_hash(manage_token)
            )
        ).scalar_one()
    )


def end_registration(
    connection: Connection, registration_id: int, reason: str, now: datetime
) -> None:
    """End it and cancel whatever it still had queued."""
    connection.execute(
        update(registrations)
        .where(registrations.c.id == registration_id, registrations.c.state != ENDED)
        .values(state=ENDED, end_reason=reason, ended_at=now, updated_at=now)
    )
    connection.execute(
        update(notifications)
        .where(
            notifications.c.registration_id == registration_id,
            notifications.c.state.in_(UNSENT),
        )
        .values(state=S.CANCELLED, cancel_reason=reason, updated_at=now)
    )


def pin_matches(pin_hash: str | None, digits: str) -> bool:
    """Whether `digits` are the PIN whose hash this is (Argon2id: slow on purpose)."""
    if not pin_hash:
        return False
    try:
        return bool(_hasher.verify(pin_hash, digits))
    except (VerificationError, InvalidHashError):
        return False


def end_by_manage_token(connection: Connection, token: str, now: datetime) -> bool:
    row = connection.execute(
        select(registrations.c.id, registrations.c.confirmed_at).where(
            registrations.c.manage_token_hash == token_hash(token)
        )
    ).first()
    if row is None or row.confirmed_at is None:
        return False
    end_registration(connection, int(row.id), BY_REGISTRANT, now)
    return True


def end_by_address(
    connection: Connection, vault: ContactVault, channel: Channel, address: str, now: datetime
) -> int:
    """End every registration of this address on this channel (an SMS reply of STOP)."""
    index = vault.blind_index(channel.value, address)
    return end_by_index(connection, index, channel, BY_SMS_STOP, now)


def end_by_index(
    connection: Connection, index: str, channel: Channel, reason: str, now: datetime
) -> int:
    """End every registration on this channel whose address has this blind index."""
    ids = (
        connection.execute(
            select(registrations.c.id).where(
                registrations.c.address_index == index,
                registrations.c.channel == channel.value,
                registrations.c.state != ENDED,
            )
        )
        .scalars()
        .all()
    )
    for registration_id in ids:
        end_registration(connection, int(registration_id), reason, now)
    return len(ids)

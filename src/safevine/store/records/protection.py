"""Protection: the one place a person's protection changes, each change kept with who and why.

Protecting is immediate and always allowed. Clearing a protected person is only ever a
staff action with a reason; feeds can clear nobody who is protected.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, insert, select, update

from safevine.domain.errors import ConflictError, FieldError, NotAllowedError, NotFoundError
from safevine.domain.protection import Protection, feed_protection_change
from safevine.store.records.audit import append
from safevine.store.records.outbox import stop_everything_about
from safevine.store.schema import clear_requests, persons, protection_changes
from safevine.store.write_priority import claim_priority


class ProtectionError(ConflictError):
    """A protection change that the person's or the request's state does not allow."""


class NoPendingClearError(ProtectionError, NotFoundError):
    """No clear request with that id is waiting for a confirmation."""


class ClearByAskerError(ProtectionError, NotAllowedError):
    """The one who asked for a clear tried to confirm it."""


def _reason(reason: str) -> str:
    if not reason.strip():
        raise FieldError("reason", "is required: a protection is never cleared silently")
    return reason.strip()


def current_protection(connection: Connection, person_id: int) -> Protection:
    # FOR UPDATE serialises concurrent protect and clear on PostgreSQL; SQLite's single
    # writer already does.
    value = connection.execute(
        select(persons.c.protection).where(persons.c.id == person_id).with_for_update()
    ).scalar_one()
    return Protection(value)


def _change(
    connection: Connection,
    person_id: int,
    before: Protection,
    after: Protection,
    *,
    actor: str,
    source: str,
    reason: str | None,
    as_of: datetime,
    now: datetime,
    batch_id: int | None,
) -> None:
    connection.execute(
        update(persons)
        .where(persons.c.id == person_id)
        .values(protection=after.value, screened_at=now, updated_at=now)
    )
    connection.execute(
        insert(protection_changes).values(
            person_id=person_id,
            from_status=before.value,
            to_status=after.value,
            as_of=as_of,
            source=source[:200],
            reason=reason,
            actor=actor[:100],
            batch_id=batch_id,
            recorded_at=now,
        )
    )


def protect(
    connection: Connection,
    person_id: int,
    *,
    actor: str,
    source: str,
    reason: str | None,
    now: datetime,
    as_of: datetime | None = None,
    batch_id: int | None = None,
) -> bool:
    """Make the person protected in the caller's transaction; False if they already were.

    In the same transaction every queued notification about them is cancelled and every
    registration for them ended, so the protection and its effects commit as one.
    """
    claim_priority(connection)
    before = current_protection(connection, person_id)
    stop_everything_about(connection, person_id, now)
    if before == Protection.PROTECTED:
        return False
    append(
        connection,
        actor=actor,
        action="protect",
        target=f"person:{person_id}",
        reason=reason or f"protection from {source}",
        at=now,
    )
    _change(
        connection,
        person_id,
        before,
        Protection.PROTECTED,
        actor=actor,
        source=source,
        reason=reason,
        as_of=as_of or now,
        now=now,
        batch_id=batch_id,
    )
    return True


def clear(
    connection: Connection, person_id: int, *, actor: str, reason: str, now: datetime
) -> bool:
    """Staff decision that a person may be public; False if already cleared.

    Raises FieldError without a reason: unprotecting is never done silently.
    """
    reason = _reason(reason)
    before = current_protection(connection, person_id)
    if before == Protection.CLEARED:
        return False
    append(
        connection,
        actor=actor,
        action="clear",
        target=f"person:{person_id}",
        reason=reason.strip(),
        at=now,
    )
    _change(
        connection,
        person_id,
        before,
        Protection.CLEARED,
        actor=actor,
        source="staff",
        reason=reason.strip(),
        as_of=now,
        now=now,
        batch_id=None,
    )
    return True


def apply_feed_protection(
    connection: Connection,
    person_id: int,
    asserted: Protection,
    *,
    source: str,
    as_of: datetime,
    now: datetime,
    batch_id: int | None,
) -> Protection | None:
    """Apply what a feed says; returns the new protection, or None when nothing changed.

    A feed may protect anyone and clear an unscreened person; it never clears a protected one.
    """
    before = current_protection(connection, person_id)
    after = feed_protection_change(before, asserted)
    if after is None:
        return None
    if after == Protection.PROTECTED:
        protect(
            connection,
            person_id,
            actor="feed",
            source=source,
            reason=None,
            now=now,
            as_of=as_of,
            batch_id=batch_id,
        )
    else:
        _change(
            connection,
            person_id,
            before,
            after,
            actor="feed",
            source=source,
            reason=None,
            as_of=as_of,
            now=now,
            batch_id=batch_id,
        )
    return after


CLEAR_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class ClearRequest:
    id: int
    person_id: int
    requested_by: str
    reason: str
    requested_at: datetime
    expires_at: datetime
    state: str


def request_clear(
    connection: Connection, person_id: int, *, actor: str, reason: str, now: datetime
) -> ClearRequest:
    """First half of a two-person clear. The person stays protected until a different
    person confirms within 24 hours. Raises ProtectionError."""
    reason = _reason(reason)
    if current_protection(connection, person_id) == Protection.CLEARED:
        raise ProtectionError("this person is already cleared")
    request_id = connection.execute(
        insert(clear_requests)
        .values(
            person_id=person_id,
            requested_by=actor[:100],
            reason=reason.strip(),
            requested_at=now,
            expires_at=now + CLEAR_WINDOW,
            state="pending",
        )
        .returning(clear_requests.c.id)
    ).scalar_one()
    append(
        connection,
        actor=actor,
        action="clear_requested",
        target=f"person:{person_id} request:{request_id}",
        reason=reason.strip(),
        at=now,
    )
    return ClearRequest(
        int(request_id), person_id, actor, reason.strip(), now, now + CLEAR_WINDOW, "pending"
    )


def pending_request(connection: Connection, request_id: int) -> ClearRequest:
    """A clear request waiting for its second person; NoPendingClearError otherwise."""
    row = connection.execute(
        select(clear_requests).where(clear_requests.c.id == request_id)
    ).first()
    if row is None or row.state != "pending":
        raise NoPendingClearError("no pending clear request with that id")
    return ClearRequest(
        int(row.id),
        int(row.person_id),
        row.requested_by,
        row.reason,
        row.requested_at,
        row.expires_at,
        row.state,
    )


def confirm_clear(connection: Connection, request_id: int, *, actor: str, now: datetime) -> int:
    """Second half: a different person confirms, and the person is cleared. Returns the
    person id. Raises ProtectionError for an unknown, decided or expired request, or when
    the one who asked tries to confirm."""
    row = connection.execute(
        select(clear_requests).where(clear_requests.c.id == request_id).with_for_update()
    ).first()
    if row is None:
        raise NoPendingClearError("no pending clear request with that id")
    if row.state != "pending":
        raise ProtectionError(f"clear request {request_id} was already {row.state}")
    if row.expires_at <= now:
        connection.execute(
            update(clear_requests).where(clear_requests.c.id == request_id).values(state="expired")
        )
        raise ProtectionError("this clear request expired; the person stays protected")
    if row.requested_by == actor:
        raise ClearByAskerError("a clear must be confirmed by a different person than asked for it")
    connection.execute(
        update(clear_requests)
        .where(clear_requests.c.id == request_id)
        .values(state="confirmed", decided_by=actor[:100], decided_at=now)
    )
    append(
        connection,
        actor=actor,
        action="clear_confirmed",
        target=f"person:{row.person_id} request:{request_id}",
        reason=row.reason,
        at=now,
    )
    clear(
        connection,
        int(row.person_id),
        actor=f"{row.requested_by}+{actor}",
        reason=row.reason,
        now=now,
    )
    return int(row.person_id)

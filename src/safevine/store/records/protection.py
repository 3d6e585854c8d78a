"""Protection: the one place a person's protection changes, each change kept with who and why.

Protecting is immediate and always allowed. Clearing a protected person is only ever a
staff action with a reason; feeds can clear nobody who is protected.
"""

from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from safevine.domain.protection import Protection, feed_protection_change
from safevine.store.records.outbox import stop_everything_about
from safevine.store.schema import persons, protection_changes
from safevine.store.write_priority import claim_priority


class ProtectionError(ValueError):
    """A protection change that is not allowed; the message says why."""


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

    Raises ProtectionError without a reason: unprotecting is never done silently.
    """
    if not reason.strip():
        raise ProtectionError("clearing a protection needs a reason")
    before = current_protection(connection, person_id)
    if before == Protection.CLEARED:
        return False
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

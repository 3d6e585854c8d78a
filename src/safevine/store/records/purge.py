"""What a purge removes, kind by kind, a batch of rows at a time (`actions.purge` runs the
batches, each in its own short transaction, and audits the run).

Each `purge_*` function takes one batch of what is past its cutoff, changes it so that
nothing identifying remains, and returns how many rows it changed (0: the kind is done).
Each `count_*` counts what a purge would change, for `--dry-run`. Rows are kept wherever
counts matter (the delivery report, the statistics); only what identifies goes.
"""

import hashlib
import hmac
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    delete,
    exists,
    func,
    or_,
    select,
    update,
)

from safevine.domain.event_kinds import CustodyState
from safevine.domain.notification_state import NotificationState as S
from safevine.domain.retention import Cutoffs
from safevine.store.decoy import real_persons
from safevine.store.public.registrations import ENDED, PENDING
from safevine.store.public.tables import call_attempts, notifications, registrations
from safevine.store.records.outbox import stop_everything_about
from safevine.store.records.persons import new_public_ref
from safevine.store.row_writes import insert_rows, update_rows
from safevine.store.schema import (
    clear_requests,
    custody_events,
    custody_status,
    held_status,
    ingest_batches,
    ingest_rejects,
    person_names,
    persons,
    protection_changes,
    purged_persons,
    roster_entries,
    staff_login_attempts,
    staff_sessions,
)

# Rows in a batch of returns checked (`mark_returns`): reads, and a rare write.
BATCH = 1_000
# A purged person's A-number slot holds this and their id in base 36: unique, and never an
# A-number (those are digits).
PURGED_MARK = "~"
FINISHED = (S.DELIVERED, S.ACKNOWLEDGED, S.FAILED, S.CANCELLED)


def keyed(secret: bytes, purpose: str, value: str) -> str:
    """An irreversible keyed hash: without the secret key no one can test a guess."""
    return hmac.new(secret, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def a_number_key(secret: bytes, a_number: str) -> str:
    return keyed(secret, "a_number", a_number)


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        number, rest = divmod(number, 36)
        text = digits[rest] + text
        if number == 0:
            return text


# Persons ----------------------------------------------------------------------------------


def _persons_due(cutoffs: Cutoffs) -> ColumnElement[bool]:
    """Out of custody since before the cutoff, not yet purged, and in no batch still
    under judgement (its held status would name them). Never the decoy."""
    return and_(
        real_persons(),
        custody_status.c.state != CustodyState.IN_CUSTODY.value,
        custody_status.c.left_custody_at < cutoffs.left_custody,
        ~persons.c.a_number.startswith(PURGED_MARK),
        ~exists().where(held_status.c.person_id == persons.c.id),
    )


def count_persons(connection: Connection, cutoffs: Cutoffs) -> int:
    return int(
        connection.execute(
            select(func.count())
            .select_from(persons.join(custody_status, custody_status.c.person_id == persons.c.id))
            .where(_persons_due(cutoffs))
        ).scalar_one()
    )


def purge_persons(
    connection: Connection, cutoffs: Cutoffs, secret: bytes, now: datetime, after: int, limit: int
) -> tuple[int, int]:
    """Purge a batch of persons: their registrations are ended first with the one generic
    status; then names, aliases, date of birth and A-number go (the A-number kept only as
    a keyed hash, to recognise a return), events' feed ids and hashes are keyed too, and
    protection and clear reasons go. Internal ids, events, facilities and country stay.
    A statement per kind of change for the whole batch, not per person."""
    rows = connection.execute(
        select(persons.c.id, persons.c.a_number, persons.c.public_ref)
        .select_from(persons.join(custody_status, custody_status.c.person_id == persons.c.id))
        # The cursor on both sides of the join: PostgreSQL does not carry it across, and
        # its merge join would read every status before the cursor again, each batch.
        .where(_persons_due(cutoffs), persons.c.id > after, custody_status.c.person_id > after)
        .order_by(persons.c.id)
        .limit(limit)
        # PostgreSQL: a person being booked again meanwhile is skipped (the next run sees
        # them), and one booked since the read began is read again and no longer due.
        .with_for_update(of=[persons, custody_status], skip_locked=True)
    ).all()
    if not rows:
        return 0, after
    ids = [int(row.id) for row in rows]
    registered = set(
        connection.execute(
            select(registrations.c.person_ref)
            .where(registrations.c.person_ref.in_([row.public_ref for row in rows]))
            .distinct()
        ).scalars()
    )
    for row in rows:
        if row.public_ref in registered:
            stop_everything_about(connection, int(row.id), now)
    insert_rows(
        connection,
        purged_persons,
        [
            {
                "person_id": int(row.id),
                "a_number_key": a_number_key(secret, str(row.a_number)),
                "purged_at": now,
            }
            for row in rows
        ],
    )
    update_rows(
        connection,
        persons,
        "id",
        [
            {"id": i, "a_number": PURGED_MARK + _base36(i), "public_ref": new_public_ref()}
            for i in ids
        ],
        {"given_name": None, "family_name": None, "date_of_birth": None, "updated_at": now},
    )
    connection.execute(delete(person_names).where(person_names.c.person_id.in_(ids)))
    _key_events(connection, ids, secret)
    connection.execute(
        update(protection_changes)
        .where(protection_changes.c.person_id.in_(ids))
        .values(reason=None)
    )
    connection.execute(
        update(clear_requests).where(clear_requests.c.person_id.in_(ids)).values(reason="(purged)")
    )
    return len(rows), ids[-1]


def _key_events(connection: Connection, person_ids: list[int], secret: bytes) -> None:
    """A feed's event id and an event's content hash can be tested against guessed
    A-numbers (a roster event's id hashes one); keyed, they cannot."""
    events = connection.execute(
        select(custody_events.c.id, custody_events.c.event_id, custody_events.c.content_hash).where(
            custody_events.c.person_id.in_(person_ids),
            ~custody_events.c.event_id.startswith("purged-"),
        )
    ).all()
    if not events:
        return
    keyed_ids = {
        int(event.id): "purged-" + keyed(secret, "event_id", str(event.event_id))[:56]
        for event in events
    }
    update_rows(
        connection,
        custody_events,
        "id",
        [
            {
                "id": int(event.id),
                "event_id": keyed_ids[int(event.id)],
                "content_hash": keyed(secret, "content", str(event.content_hash)),
            }
            for event in events
        ],
    )
    statuses = connection.execute(
        select(custody_status.c.person_id, custody_status.c.event_pk).where(
            custody_status.c.person_id.in_(person_ids)
        )
    ).all()
    changed = [
        {"person_id": int(s.person_id), "event_id": keyed_ids[int(s.event_pk)]}
        for s in statuses
        if int(s.event_pk) in keyed_ids
    ]
    update_rows(connection, custody_status, "person_id", changed)


def mark_returns(
    connection: Connection, secret: bytes, since: datetime, after_id: int
) -> tuple[int, int]:
    """A batch of persons created since `since` with ids above `after_id`, checked against
    the persons purged before them: one whose A-number's keyed hash matches is a return
    (`returned_as`), a new record all the same, screened afresh. Returns (last id checked,
    returns found); the last id is `after_id` once none is left."""
    rows = connection.execute(
        select(persons.c.id, persons.c.a_number, persons.c.created_at)
        .where(
            persons.c.id > after_id,
            persons.c.created_at >= since,
            real_persons(),
            ~persons.c.a_number.startswith(PURGED_MARK),
        )
        .order_by(persons.c.id)
        .limit(BATCH)
    ).all()
    if not rows:
        return after_id, 0
    by_key = {a_number_key(secret, str(row.a_number)): row for row in rows}
    found = connection.execute(
        select(
            purged_persons.c.person_id, purged_persons.c.a_number_key, purged_persons.c.purged_at
        ).where(
            purged_persons.c.a_number_key.in_(list(by_key)),
            purged_persons.c.returned_as.is_(None),
        )
    ).all()
    returns = 0
    for purged in found:
        newer = by_key[purged.a_number_key]
        if newer.created_at < purged.purged_at:
            continue
        connection.execute(
            update(purged_persons)
            .where(purged_persons.c.person_id == purged.person_id)
            .values(returned_as=int(newer.id))
        )
        returns += 1
    return int(rows[-1].id), returns


# Registrations' contacts ------------------------------------------------------------------


def _contacts_due(cutoffs: Cutoffs) -> ColumnElement[bool]:
    ended = and_(registrations.c.state == ENDED, registrations.c.ended_at < cutoffs.contact)
    # Never confirmed: its code expired long ago.
    unconfirmed = and_(
        registrations.c.state == PENDING, registrations.c.created_at < cutoffs.contact
    )
    return and_(or_(ended, unconfirmed), registrations.c.address_hint != "")


def count_contacts(connection: Connection, cutoffs: Cutoffs) -> int:
    return _count(connection, registrations, _contacts_due(cutoffs))


def purge_contacts(
    connection: Connection, cutoffs: Cutoffs, _secret: bytes, now: datetime, after: int, limit: int
) -> tuple[int, int]:
    ids = _ids(connection, registrations, _contacts_due(cutoffs), after, limit)
    if ids:
        connection.execute(
            update(registrations)
            .where(registrations.c.id.in_(ids))
            .values(
                address_ciphertext=b"",
                address_index="",
                address_hint="",
                manage_token_ciphertext=None,
                webhook_secret_ciphertext=None,
                code_hash=None,
                pin_hash=None,
                state=ENDED,
                ended_at=func.coalesce(registrations.c.ended_at, now),
                updated_at=now,
            )
        )
    return len(ids), ids[-1] if ids else after


# Messages ---------------------------------------------------------------------------------


def _messages_due(cutoffs: Cutoffs) -> ColumnElement[bool]:
    scrubbed = and_(
        notifications.c.provider_message_id.is_(None),
        notifications.c.last_error.is_(None),
        notifications.c.secret_ciphertext.is_(None),
    )
    return and_(
        notifications.c.state.in_([s.value for s in FINISHED]),
        notifications.c.updated_at < cutoffs.message,
        ~scrubbed,
    )


def count_messages(connection: Connection, cutoffs: Cutoffs) -> int:
    return _count(connection, notifications, _messages_due(cutoffs))


def purge_messages(
    connection: Connection, cutoffs: Cutoffs, _secret: bytes, now: datetime, after: int, limit: int
) -> tuple[int, int]:
    """The provider's ids, the last error (a bounce names the address) and a code go; the
    state, channel, provider and times stay for the delivery report."""
    ids = _ids(connection, notifications, _messages_due(cutoffs), after, limit)
    if ids:
        connection.execute(
            update(notifications)
            .where(notifications.c.id.in_(ids))
            .values(provider_message_id=None, last_error=None, secret_ciphertext=None)
        )
        connection.execute(
            update(call_attempts)
            .where(call_attempts.c.notification_id.in_(ids))
            .values(call_sid="")
        )
    return len(ids), ids[-1] if ids else after


# Feed records -----------------------------------------------------------------------------


def _rejects_due(cutoffs: Cutoffs) -> ColumnElement[bool]:
    return and_(ingest_rejects.c.created_at < cutoffs.feed, ingest_rejects.c.raw != "")


def count_rejects(connection: Connection, cutoffs: Cutoffs) -> int:
    return _count(connection, ingest_rejects, _rejects_due(cutoffs))


def purge_rejects(
    connection: Connection, cutoffs: Cutoffs, _secret: bytes, now: datetime, after: int, limit: int
) -> tuple[int, int]:
    ids = _ids(connection, ingest_rejects, _rejects_due(cutoffs), after, limit)
    if ids:
        connection.execute(
            update(ingest_rejects).where(ingest_rejects.c.id.in_(ids)).values(raw="")
        )
    return len(ids), ids[-1] if ids else after


def _roster_rows_due(cutoffs: Cutoffs) -> ColumnElement[bool]:
    """A roster's staged rows, once its batch is older than the cutoff (a diff reads only
    its own batch's rows)."""
    old = select(ingest_batches.c.id).where(ingest_batches.c.started_at < cutoffs.feed)
    return roster_entries.c.batch_id.in_(old.scalar_subquery())


def count_roster_rows(connection: Connection, cutoffs: Cutoffs) -> int:
    return _count(connection, roster_entries, _roster_rows_due(cutoffs))


def purge_roster_rows(
    connection: Connection, cutoffs: Cutoffs, _secret: bytes, now: datetime, after: int, limit: int
) -> tuple[int, int]:
    ids = _ids(connection, roster_entries, _roster_rows_due(cutoffs), after, limit)
    if ids:
        connection.execute(delete(roster_entries).where(roster_entries.c.id.in_(ids)))
    return len(ids), ids[-1] if ids else after


# Staff sign-in records --------------------------------------------------------------------


def _sessions_due(cutoffs: Cutoffs) -> ColumnElement[bool]:
    return staff_sessions.c.last_seen_at < cutoffs.staff


def count_staff(connection: Connection, cutoffs: Cutoffs) -> int:
    return _count(connection, staff_sessions, _sessions_due(cutoffs)) + _count(
        connection, staff_login_attempts, staff_login_attempts.c.at < cutoffs.staff
    )


def purge_staff(
    connection: Connection, cutoffs: Cutoffs, _secret: bytes, now: datetime, after: int, limit: int
) -> tuple[int, int]:
    ids = _ids(connection, staff_sessions, _sessions_due(cutoffs), 0, limit)
    if ids:
        connection.execute(delete(staff_sessions).where(staff_sessions.c.id.in_(ids)))
    attempts = _ids(
        connection, staff_login_attempts, staff_login_attempts.c.at < cutoffs.staff, 0, limit
    )
    if attempts:
        connection.execute(
            delete(staff_login_attempts).where(staff_login_attempts.c.id.in_(attempts))
        )
    # Deleted rows are gone, so the next batch starts at the front again: no cursor.
    return len(ids) + len(attempts), 0


# ------------------------------------------------------------------------------------------


def _ids(
    connection: Connection, table: object, where: ColumnElement[bool], after: int, limit: int
) -> list[int]:
    """The next batch's ids after `after`: each batch starts where the last ended, so a
    run never walks again over the rows it already changed."""
    column = table.c.id  # type: ignore[attr-defined]
    return [
        int(i)
        for i in connection.execute(
            select(column).where(where, column > after).order_by(column).limit(limit)
        ).scalars()
    ]


def _count(connection: Connection, table: object, where: ColumnElement[bool]) -> int:
    return int(
        connection.execute(select(func.count()).select_from(table).where(where)).scalar_one()  # type: ignore[arg-type]
    )


# One batch of at most `limit` rows after a cursor: (rows changed, the next batch's cursor).
Purge = Callable[[Connection, Cutoffs, bytes, datetime, int, int], tuple[int, int]]
Count = Callable[[Connection, Cutoffs], int]
# Persons first: ending their registrations makes those contacts due later, never lost.
KINDS: dict[str, tuple[Purge, Count]] = {
    "persons": (purge_persons, count_persons),
    "contacts": (purge_contacts, count_contacts),
    "messages": (purge_messages, count_messages),
    "rejected_records": (purge_rejects, count_rejects),
    "roster_rows": (purge_roster_rows, count_roster_rows),
    "staff_sign_ins": (purge_staff, count_staff),
}
# Tables a purge changes: vacuumed afterwards on PostgreSQL.
TABLES = (
    "persons",
    "person_names",
    "custody_events",
    "custody_status",
    "protection_changes",
    "clear_requests",
    "registrations",
    "notifications",
    "call_attempts",
    "ingest_rejects",
    "roster_entries",
    "staff_sessions",
    "staff_login_attempts",
)

"""The outbox, from the records side: notification rows written in the transaction that
stores their event, and cancelled in the transaction that protects their person."""

import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from safevine.domain.notification_state import NotificationState as S
from safevine.store.member_of import chunked
from safevine.store.public.registrations import (
    ACTIVE,
    RECORD_UNAVAILABLE,
    UNSENT,
    end_registration,
)
from safevine.store.public.tables import notifications, registrations
from safevine.store.schema import facilities, persons


def write_event_notifications(
    connection: Connection,
    events: Sequence[tuple[int, int, dict[str, Any]]],
    now: datetime,
    hold_batch_id: int | None = None,
) -> int:
    """One queued notification per (active registration wanting the kind, event); `held`
    instead, tied to `hold_batch_id`, while that batch is under judgement.

    `events` holds (event pk, person id, event fields: kind, occurred_at, facility_id,
    details). The content copied into each row names no one: the name is read from the
    public view when the message is sent, so a person protected meanwhile is never named.
    """
    if not events:
        return 0
    person_ids = sorted({person_id for _, person_id, _ in events})
    refs: dict[str, int] = {}
    for part in chunked(person_ids):
        rows = connection.execute(
            select(persons.c.id, persons.c.public_ref).where(persons.c.id.in_(part))
        )
        refs.update((ref, int(person_id)) for person_id, ref in rows)
    # Two lookups, not a join: PostgreSQL would hash-join every registration in the land.
    wanting: dict[int, list[tuple[int, list[str]]]] = {}
    for part in chunked(sorted(refs)):
        rows = connection.execute(
            select(registrations.c.id, registrations.c.person_ref, registrations.c.events).where(
                registrations.c.person_ref.in_(part), registrations.c.state == ACTIVE
            )
        )
        for row in rows:
            wanting.setdefault(refs[row.person_ref], []).append((int(row.id), list(row.events)))
    if not wanting:
        return 0
    events = [e for e in events if e[1] in wanting]
    facility_ids = sorted({f["facility_id"] for _, _, f in events if f["facility_id"]})
    places: dict[int, Any] = {}
    for part in chunked(facility_ids):
        for place in connection.execute(
            select(
                facilities.c.id,
                facilities.c.name,
                facilities.c.city,
                facilities.c.state,
                facilities.c.time_zone,
            ).where(facilities.c.id.in_(part))
        ):
            places[int(place.id)] = place
    rows_to_add = []
    for event_pk, person_id, fields in events:
        where = places.get(fields["facility_id"]) if fields["facility_id"] else None
        content = {
            "kind": fields["kind"],
            "occurred_at": fields["occurred_at"].isoformat(),
            "facility_name": where.name if where else None,
            "facility_city": where.city if where else None,
            "facility_state": where.state if where else None,
            "facility_time_zone": where.time_zone if where else None,
            "details": fields["details"],
        }
        for registration_id, kinds in wanting.get(person_id, []):
            if fields["kind"] in kinds:
                rows_to_add.append(
                    {
                        "registration_id": registration_id,
                        "purpose": "event",
                        "event_pk": event_pk,
                        "content": content,
                        "state": S.HELD if hold_batch_id else S.QUEUED,
                        "hold_batch_id": hold_batch_id,
                        "next_attempt_at": now,
                        "idempotency_key": secrets.token_hex(16),
                        "created_at": now,
                        "updated_at": now,
                    }
                )
    if rows_to_add:
        connection.execute(insert(notifications), rows_to_add)
    return len(rows_to_add)


def stop_everything_about(connection: Connection, person_id: int, now: datetime) -> tuple[int, int]:
    """Cancel every queued, retrying or in-flight notification about the person and end
    their registrations, with the one generic reason. Returns (cancelled, ended).

    On PostgreSQL, a notification being sent is row-locked by its dispatcher until the send
    is recorded, so this waits for that send and the protection commits after it: nothing
    about the person can leave after the protection is committed.
    """
    ref = connection.execute(
        select(persons.c.public_ref).where(persons.c.id == person_id)
    ).scalar_one()
    registration_ids = [
        int(i)
        for i in connection.execute(
            select(registrations.c.id).where(registrations.c.person_ref == ref)
        ).scalars()
    ]
    if not registration_ids:
        return 0, 0
    cancelled = connection.execute(
        update(notifications)
        .where(
            notifications.c.registration_id.in_(registration_ids),
            notifications.c.state.in_(UNSENT),
        )
        .values(state=S.CANCELLED, cancel_reason=RECORD_UNAVAILABLE, updated_at=now)
    ).rowcount
    ended = 0
    for registration_id in registration_ids:
        state = connection.execute(
            select(registrations.c.state).where(registrations.c.id == registration_id)
        ).scalar_one()
        if state != "ended":
            end_registration(connection, registration_id, RECORD_UNAVAILABLE, now)
            ended += 1
    return int(cancelled), ended

"""The outbox, from the records side: notification rows written in the transaction that
stores their event, and cancelled in the transaction that protects their person."""

import json
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from safevine.domain.notification_state import NotificationState as S
from safevine.store.driver_sql import Driver
from safevine.store.public.registrations import (
    ACTIVE,
    RECORD_UNAVAILABLE,
    UNSENT,
    end_registration,
)
from safevine.store.public.tables import notifications, registrations
from safevine.store.schema import persons


@dataclass(frozen=True)
class Audience:
    """Who wants to hear about some people's events, and where their facilities are."""

    # person id: (registration id, the event kinds it wants) for each active registration
    wanting: dict[int, list[tuple[int, list[str]]]]
    # facility id: (name, city, state, time zone)
    places: dict[int, tuple[Any, ...]]


def notification_audience(
    connection: Connection, person_ids: Iterable[int], facility_ids: Iterable[int]
) -> Audience:
    """The active registrations on these people and these facilities' names: read before a
    chunk's writes, as nothing those writes change is read here."""
    driver = Driver(connection)
    refs: dict[str, int] = dict(
        driver.rows(
            "SELECT public_ref, id FROM persons WHERE id = ANY(?::bigint[])",
            [driver.keys(sorted(set(person_ids)))],
        )
    )
    wanting: dict[int, list[tuple[int, list[str]]]] = {}
    if refs:
        # Two lookups, not a join: PostgreSQL would hash-join every registration in the land.
        for registration_id, ref, kinds in driver.rows(
            "SELECT id, person_ref, events FROM registrations "
            "WHERE person_ref = ANY(?::text[]) AND state = ?",
            [driver.keys(sorted(refs)), ACTIVE],
        ):
            wanted = json.loads(kinds) if isinstance(kinds, str) else kinds
            wanting.setdefault(refs[ref], []).append((int(registration_id), list(wanted)))
    places: dict[int, tuple[Any, ...]] = {}
    wanted_places = sorted(set(facility_ids)) if wanting else []
    if wanted_places:
        places = {
            row[0]: row[1:]
            for row in driver.rows(
                "SELECT id, name, city, state, time_zone FROM facilities "
                "WHERE id = ANY(?::bigint[])",
                [driver.keys(wanted_places)],
            )
        }
    return Audience(wanting, places)


def write_event_notifications(
    connection: Connection,
    events: Sequence[tuple[int, int, dict[str, Any]]],
    now: datetime,
    hold_batch_id: int | None = None,
    audience: Audience | None = None,
) -> int:
    """One queued notification per (active registration wanting the kind, event); `held`
    instead, tied to `hold_batch_id`, while that batch is under judgement.

    `events` holds (event pk, person id, event fields: kind, occurred_at, facility_id,
    details). The content copied into each row names no one: the name is read from the
    public view when the message is sent, so a person protected meanwhile is never named.
    `audience`: read beforehand (`notification_audience`) for at least these people and
    facilities; read here when not given.
    """
    if not events:
        return 0
    if audience is None:
        audience = notification_audience(
            connection,
            (person_id for _, person_id, _ in events),
            (f["facility_id"] for _, _, f in events if f["facility_id"]),
        )
    wanting, places = audience.wanting, audience.places
    events = [e for e in events if e[1] in wanting]
    if not events:
        return 0
    driver = Driver(connection)
    state = str(S.HELD if hold_batch_id else S.QUEUED)
    at = driver.when(now)
    messages: list[tuple[int, int, str]] = []
    for event_pk, person_id, fields in events:
        name, city, region, zone = places.get(fields["facility_id"], (None, None, None, None))
        content = json.dumps(
            {
                "kind": fields["kind"],
                "occurred_at": fields["occurred_at"].isoformat(),
                "facility_name": name,
                "facility_city": city,
                "facility_state": region,
                "facility_time_zone": zone,
                "details": fields["details"],
            }
        )
        messages += [
            (registration_id, event_pk, content)
            for registration_id, kinds in wanting.get(person_id, [])
            if fields["kind"] in kinds
        ]
    # Each row's idempotency key is 128 random bits, drawn in one call for them all.
    drawn = secrets.token_bytes(16 * len(messages)).hex()
    rows_to_add = [
        (registration_id, "event", event_pk, content, state, hold_batch_id, at,
         drawn[32 * n : 32 * n + 32], at, at)
        for n, (registration_id, event_pk, content) in enumerate(messages)
    ]  # fmt: skip
    driver.insert(notifications, _COLUMNS, rows_to_add)
    return len(rows_to_add)


_COLUMNS = (
    "registration_id",
    "purpose",
    "event_pk",
    "content",
    "state",
    "hold_batch_id",
    "next_attempt_at",
    "idempotency_key",
    "created_at",
    "updated_at",
)


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

"""Telling registrants that a facility's feed went down, and that it came back: one `delay`
notice per registration when an outage begins and one `resumed` notice when it ends,
only to those the delay notice reached (a unique index holds it to one of each).

A notice is a notification like any other, written in the evaluation's transaction: a
protection cancels it, the dispatcher's last gate checks the person again, and quiet hours
hold it. Its content names nothing: not the person, not the facility.
"""

import json
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    String,
    Text,
    bindparam,
    case,
    cast,
    false,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement

from safevine.domain.notification_state import REACHED, UNSENT
from safevine.domain.notification_state import NotificationState as S
from safevine.store.member_of import chunked
from safevine.store.public.registrations import ACTIVE
from safevine.store.public.tables import notifications, registrations
from safevine.store.public.views import public_persons
from safevine.store.schema import custody_status, facility_health, feed_outages, persons
from safevine.store.types import UTCDateTime

DELAY = "delay"
RESUMED = "resumed"
# A delay notice not yet sent when the feed is back says nothing true any more.
SUPERSEDED = "superseded"


def _since(connection: Connection, outage_ids: list[int]) -> dict[str, str | None]:
    """When data last arrived before each outage (by outage id as text): all a notice
    says, not even the facility's time zone."""
    found: dict[str, str | None] = {}
    for part in chunked(sorted(outage_ids)):
        for outage, last in connection.execute(
            select(feed_outages.c.id, feed_outages.c.last_data).where(feed_outages.c.id.in_(part))
        ):
            found[str(outage)] = last.isoformat() if last else None
    return found


def _inserted_columns(
    connection: Connection, purpose: str, outage: Any, outage_ids: list[int], now: datetime
) -> list[Any]:
    """What a notice row is made of, in the order of `_COLUMNS`, as SQL expressions over
    a query that has `registrations` and the outage's id in `outage`: its content (when
    data last arrived, and nothing else) is looked up from a JSON map bound once."""
    since = json.dumps(_since(connection, outage_ids))
    since_of: ColumnElement[Any]
    if connection.dialect.name == "postgresql":
        since_of = cast(bindparam("since", since, type_=Text), JSONB).op("->>")(cast(outage, Text))
        content = func.json_build_object("since", since_of)
        key = func.replace(cast(func.gen_random_uuid(), Text), "-", "")
    else:
        path = literal('$."') + cast(outage, String) + literal('"')
        since_of = func.json_extract(bindparam("since", since, type_=Text), path)
        content = func.json_object("since", since_of)
        key = func.lower(func.hex(func.randomblob(16)))
    at = literal(now, UTCDateTime)
    return [
        registrations.c.id,
        literal(purpose),
        outage,
        content,
        literal(S.QUEUED.value),
        at,
        key,
        at,
        at,
    ]


_COLUMNS = [
    "registration_id",
    "purpose",
    "outage_id",
    "content",
    "state",
    "next_attempt_at",
    "idempotency_key",
    "created_at",
    "updated_at",
]


def _told(outage: Any, purpose: str) -> Any:
    """The registration has a notice of this purpose for the outage, so it is not told
    again: one probe of the unique index per candidate (OFFSET keeps PostgreSQL from
    planning it as a join, which stale statistics after a burst of notices made a
    nested loop over every notice)."""
    return (
        select(notifications.c.id)
        .where(
            notifications.c.outage_id == outage,
            notifications.c.registration_id == registrations.c.id,
            notifications.c.purpose == purpose,
        )
        .offset(0)
        .exists()
    )


# Who is public is asked of the public view, row by row. OFFSET keeps PostgreSQL from
# turning the EXISTS into a join with the whole view (it pulls up a plain one): asked
# so, the view finds each person by their reference.
_PUBLIC = (
    select(public_persons.c.public_ref)
    .where(public_persons.c.public_ref == registrations.c.person_ref)
    .offset(0)
    .exists()
)


def _untold_and_public(outage: Any, purpose: str) -> Any:
    """Not told yet, and public, asked in that order (one expression, so the database
    cannot reorder them): a long outage's registrants are all told already, and the
    cheap probe spares the view's."""
    return case((_told(outage, purpose), false()), else_=_PUBLIC)


def queue_delay_notices(connection: Connection, now: datetime) -> int:
    """For each outage under way, a delay notice to each active registration about a
    public person held at the facility; none twice for one outage. Every outage, not only
    those begun now: whoever registered since it began, or whose person was moved there,
    is told too.

    INSERT ... SELECT: a national outage tells tens of thousands of registrants, and
    their rows need not travel to Python and back."""
    outage = facility_health.c.outage_id
    under_way = {
        int(facility): int(outage_id)
        for facility, outage_id in connection.execute(
            select(facility_health.c.facility_id, outage).where(outage.is_not(None))
        )
    }
    if not under_way:
        return 0
    outage_ids = sorted(set(under_way.values()))
    made = _inserted_columns(connection, DELAY, outage, outage_ids, now)
    # PostgreSQL finds every outage's registrants in one hash join; SQLite, whose planner
    # would otherwise start from every registration, from each facility's people by index.
    groups = [None] if connection.dialect.name == "postgresql" else chunked(sorted(under_way))
    added = 0
    for part in groups:
        rows = (
            select(*made)
            .select_from(facility_health)
            .join(custody_status, custody_status.c.facility_id == facility_health.c.facility_id)
            .join(persons, persons.c.id == custody_status.c.person_id)
            .join(registrations, registrations.c.person_ref == persons.c.public_ref)
            .where(
                outage.is_not(None) if part is None else facility_health.c.facility_id.in_(part),
                custody_status.c.state == "in_custody",
                registrations.c.state == ACTIVE,
                _untold_and_public(outage, DELAY),
            )
        )
        added += _inserted(connection, rows)
    if added:
        _recount(connection, outage_ids, "delay_notices", DELAY)
    return added


def withdraw_delay_notices(connection: Connection, outage_ids: list[int], now: datetime) -> int:
    """Cancel these outages' delay notices not yet sent (the feed is back, or staff held
    the facility): they would now say something untrue."""
    withdrawn = 0
    for part in chunked(sorted(outage_ids)):
        withdrawn += connection.execute(
            update(notifications)
            .where(
                notifications.c.outage_id.in_(part),
                notifications.c.purpose == DELAY,
                notifications.c.state.in_(UNSENT),
            )
            .values(state=S.CANCELLED, cancel_reason=SUPERSEDED, updated_at=now)
        ).rowcount
    return withdrawn


def queue_resumed_notices(connection: Connection, now: datetime) -> int:
    """For each outage that ended and was not followed up yet: a resumed notice to each
    registration its delay notice reached and that is still active and about a public
    person. (The delay notices still waiting were withdrawn when it ended.)"""
    pending = feed_outages.c.ended_at.is_not(None) & feed_outages.c.followed_up_at.is_(None)
    outage_ids = [
        int(o) for o in connection.execute(select(feed_outages.c.id).where(pending)).scalars()
    ]
    if not outage_ids:
        return 0
    delay = notifications.alias("delay")
    made = _inserted_columns(connection, RESUMED, delay.c.outage_id, outage_ids, now)
    added = 0
    for part in chunked(outage_ids):
        rows = (
            select(*made)
            .select_from(delay)
            .join(registrations, registrations.c.id == delay.c.registration_id)
            .where(
                delay.c.outage_id.in_(part),
                delay.c.purpose == DELAY,
                delay.c.state.in_(REACHED),
                registrations.c.state == ACTIVE,
                _untold_and_public(delay.c.outage_id, RESUMED),
            )
        )
        added += _inserted(connection, rows)
        connection.execute(
            update(feed_outages).where(feed_outages.c.id.in_(part)).values(followed_up_at=now)
        )
    if added:
        _recount(connection, outage_ids, "resumed_notices", RESUMED)
    return added


def _inserted(connection: Connection, rows: Any) -> int:
    """Insert the notices `rows` selects; how many. (The SQL layer reports a count for an
    INSERT ... SELECT only when asked to keep it.)"""
    done = connection.execute(
        insert(notifications).from_select(_COLUMNS, rows),
        execution_options={"preserve_rowcount": True},
    )
    return int(done.rowcount)


def _recount(connection: Connection, outage_ids: list[int], column: str, purpose: str) -> None:
    """Set each outage's count of notices of this purpose from the notices themselves."""
    counted = (
        select(func.count())
        .where(notifications.c.outage_id == feed_outages.c.id, notifications.c.purpose == purpose)
        .scalar_subquery()
    )
    for part in chunked(outage_ids):
        connection.execute(
            update(feed_outages).where(feed_outages.c.id.in_(part)).values({column: counted})
        )

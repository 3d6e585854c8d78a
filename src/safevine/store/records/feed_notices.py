"""Telling registrants that a facility's feed went down, and that it came back: one `delay`
notice per registration when an outage begins and one `resumed` notice when it ends,
only to those the delay notice reached (a unique index holds it to one of each).

A notice is a notification like any other, written in the evaluation's transaction: a
protection cancels it, the dispatcher's last gate checks the person again, and quiet hours
hold it. Its content names nothing: not the person, not the facility.
"""

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from safevine.domain.notification_state import REACHED, UNSENT
from safevine.domain.notification_state import NotificationState as S
from safevine.store.member_of import chunked
from safevine.store.public.registrations import ACTIVE
from safevine.store.public.tables import notifications, registrations
from safevine.store.public.views import public_persons
from safevine.store.schema import custody_status, feed_outages, persons

DELAY = "delay"
RESUMED = "resumed"
# A delay notice not yet sent when the feed is back says nothing true any more.
SUPERSEDED = "superseded"


def _row(
    registration_id: int, purpose: str, outage_id: int, content: dict[str, Any], now: datetime
) -> dict[str, Any]:
    return {
        "registration_id": registration_id,
        "purpose": purpose,
        "outage_id": outage_id,
        "content": content,
        "state": S.QUEUED,
        "next_attempt_at": now,
        "idempotency_key": secrets.token_hex(16),
        "created_at": now,
        "updated_at": now,
    }


def _content(connection: Connection, outage_id: int) -> dict[str, Any]:
    """When data last arrived, and nothing else: not even the facility's time zone."""
    last = connection.execute(
        select(feed_outages.c.last_data).where(feed_outages.c.id == outage_id)
    ).scalar()
    return {"since": last.isoformat() if last else None}


def _public(connection: Connection, refs: list[str]) -> set[str]:
    """Which of these references are public now (the view decides, as for messages)."""
    public: set[str] = set()
    for part in chunked(sorted(set(refs))):
        public.update(
            connection.execute(
                select(public_persons.c.public_ref).where(public_persons.c.public_ref.in_(part))
            ).scalars()
        )
    return public


def queue_delay_notices(
    connection: Connection, facility_id: int, outage_id: int, now: datetime
) -> int:
    """A delay notice for each active registration about a public person held at the
    facility; none twice for one outage."""
    rows = connection.execute(
        select(registrations.c.id, registrations.c.person_ref)
        .join(persons, persons.c.public_ref == registrations.c.person_ref)
        .join(custody_status, custody_status.c.person_id == persons.c.id)
        .where(
            custody_status.c.facility_id == facility_id,
            custody_status.c.state == "in_custody",
            registrations.c.state == ACTIVE,
        )
    ).all()
    public = _public(connection, [r.person_ref for r in rows])
    already = set(
        connection.execute(
            select(notifications.c.registration_id).where(
                notifications.c.outage_id == outage_id, notifications.c.purpose == DELAY
            )
        ).scalars()
    )
    content = _content(connection, outage_id)
    added = [
        _row(int(r.id), DELAY, outage_id, content, now)
        for r in rows
        if r.person_ref in public and r.id not in already
    ]
    if added:
        connection.execute(insert(notifications), added)
        _count(connection, outage_id, delay=len(added))
    return len(added)


def withdraw_delay_notices(connection: Connection, outage_id: int, now: datetime) -> int:
    """Cancel the outage's delay notices not yet sent (the feed is back, or staff held
    the facility): they would now say something untrue."""
    return int(
        connection.execute(
            update(notifications)
            .where(
                notifications.c.outage_id == outage_id,
                notifications.c.purpose == DELAY,
                notifications.c.state.in_(UNSENT),
            )
            .values(state=S.CANCELLED, cancel_reason=SUPERSEDED, updated_at=now)
        ).rowcount
    )


def queue_resumed_notices(connection: Connection, outage_id: int, now: datetime) -> int:
    """The feed is back: a resumed notice to each registration the delay notice reached
    and that is still active; the delay notices still waiting are withdrawn instead."""
    withdraw_delay_notices(connection, outage_id, now)
    reached = connection.execute(
        select(notifications.c.registration_id, registrations.c.person_ref)
        .join(registrations, registrations.c.id == notifications.c.registration_id)
        .where(
            notifications.c.outage_id == outage_id,
            notifications.c.purpose == DELAY,
            notifications.c.state.in_(REACHED),
            registrations.c.state == ACTIVE,
        )
    ).all()
    public = _public(connection, [r.person_ref for r in reached])
    already = set(
        connection.execute(
            select(notifications.c.registration_id).where(
                notifications.c.outage_id == outage_id, notifications.c.purpose == RESUMED
            )
        ).scalars()
    )
    content = _content(connection, outage_id)
    added = [
        _row(int(r.registration_id), RESUMED, outage_id, content, now)
        for r in reached
        if r.person_ref in public and r.registration_id not in already
    ]
    if added:
        connection.execute(insert(notifications), added)
        _count(connection, outage_id, resumed=len(added))
    return len(added)


def _count(connection: Connection, outage_id: int, delay: int = 0, resumed: int = 0) -> None:
    connection.execute(
        update(feed_outages)
        .where(feed_outages.c.id == outage_id)
        .values(
            delay_notices=feed_outages.c.delay_notices + delay,
            resumed_notices=feed_outages.c.resumed_notices + resumed,
        )
    )


def notice_counts(connection: Connection, outage_id: int) -> dict[str, int]:
    """The outage's notices by purpose and state (for staff and tests)."""
    return {
        f"{purpose}:{state}": int(n)
        for purpose, state, n in connection.execute(
            select(notifications.c.purpose, notifications.c.state, func.count())
            .where(notifications.c.outage_id == outage_id)
            .group_by(notifications.c.purpose, notifications.c.state)
        )
    }

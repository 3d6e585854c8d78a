"""Telling registrants that a facility's feed went down, and that it came back: one `delay`
notice per registration when an outage begins and one `resumed` notice when it ends,
only to those the delay notice reached (a unique index holds it to one of each).

A notice is a notification like any other, written in the evaluation's transaction: a
protection cancels it, the dispatcher's last gate checks the person again, and quiet hours
hold it. Its content names nothing: not the person, not the facility.
"""

import secrets
from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update

from safevine.domain.notification_state import REACHED, UNSENT
from safevine.domain.notification_state import NotificationState as S
from safevine.store.member_of import chunked
from safevine.store.public.registrations import ACTIVE
from safevine.store.public.tables import notifications, registrations
from safevine.store.public.views import public_persons
from safevine.store.schema import custody_status, facility_health, feed_outages, persons

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


def _since(connection: Connection, outage_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Each outage's content: when data last arrived, and nothing else (not even the
    facility's time zone)."""
    found: dict[int, dict[str, Any]] = {}
    for part in chunked(sorted(outage_ids)):
        for outage, last in connection.execute(
            select(feed_outages.c.id, feed_outages.c.last_data).where(feed_outages.c.id.in_(part))
        ):
            found[int(outage)] = {"since": last.isoformat() if last else None}
    return found


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


def _already(connection: Connection, outage_ids: list[int], purpose: str) -> set[tuple[int, int]]:
    """(outage, registration) pairs that have a notice of this purpose."""
    found: set[tuple[int, int]] = set()
    for part in chunked(sorted(outage_ids)):
        found.update(
            (int(o), int(r))
            for o, r in connection.execute(
                select(notifications.c.outage_id, notifications.c.registration_id).where(
                    notifications.c.outage_id.in_(part), notifications.c.purpose == purpose
                )
            )
        )
    return found


def queue_delay_notices(connection: Connection, outages: dict[int, int], now: datetime) -> int:
    """For each outage under way (facility id -> outage id), a delay notice to each active
    registration about a public person held at the facility; none twice for one outage."""
    if not outages:
        return 0
    wanted: list[tuple[int, int, str]] = []  # (outage, registration, person reference)
    for part in chunked(sorted(outages)):
        # Those told already are left out in the database (by the unique index on outage,
        # registration and purpose), so an outage that lasts costs little to look at again.
        told = (
            select(notifications.c.id)
            .where(
                notifications.c.outage_id == facility_health.c.outage_id,
                notifications.c.registration_id == registrations.c.id,
                notifications.c.purpose == DELAY,
            )
            .exists()
        )
        rows = connection.execute(
            select(facility_health.c.outage_id, registrations.c.id, registrations.c.person_ref)
            .join(custody_status, custody_status.c.facility_id == facility_health.c.facility_id)
            .join(persons, persons.c.id == custody_status.c.person_id)
            .join(registrations, registrations.c.person_ref == persons.c.public_ref)
            .where(
                facility_health.c.facility_id.in_(part),
                facility_health.c.outage_id.is_not(None),
                custody_status.c.state == "in_custody",
                registrations.c.state == ACTIVE,
                ~told,
            )
        )
        wanted.extend((int(o), int(r), ref) for o, r, ref in rows)
    if not wanted:
        return 0
    public = _public(connection, [ref for _, _, ref in wanted])
    contents = _since(connection, sorted({outage for outage, _, _ in wanted}))
    added = [
        _row(registration, DELAY, outage, contents[outage], now)
        for outage, registration, ref in wanted
        if ref in public
    ]
    if added:
        connection.execute(insert(notifications), added)
        _count(connection, Counter(row["outage_id"] for row in added), "delay_notices")
    return len(added)


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


def queue_resumed_notices(connection: Connection, outage_ids: list[int], now: datetime) -> int:
    """The feed is back: a resumed notice to each registration a delay notice reached and
    that is still active; the delay notices still waiting are withdrawn instead."""
    if not outage_ids:
        return 0
    withdraw_delay_notices(connection, outage_ids, now)
    reached: list[tuple[int, int, str]] = []
    for part in chunked(sorted(outage_ids)):
        reached.extend(
            (int(o), int(r), ref)
            for o, r, ref in connection.execute(
                select(
                    notifications.c.outage_id,
                    notifications.c.registration_id,
                    registrations.c.person_ref,
                )
                .join(registrations, registrations.c.id == notifications.c.registration_id)
                .where(
                    notifications.c.outage_id.in_(part),
                    notifications.c.purpose == DELAY,
                    notifications.c.state.in_(REACHED),
                    registrations.c.state == ACTIVE,
                )
            )
        )
    if not reached:
        return 0
    public = _public(connection, [ref for _, _, ref in reached])
    already = _already(connection, outage_ids, RESUMED)
    contents = _since(connection, outage_ids)
    added = [
        _row(registration, RESUMED, outage, contents[outage], now)
        for outage, registration, ref in reached
        if ref in public and (outage, registration) not in already
    ]
    if added:
        connection.execute(insert(notifications), added)
        _count(connection, Counter(row["outage_id"] for row in added), "resumed_notices")
    return len(added)


def _count(connection: Connection, added: Counter[int], column: str) -> None:
    """Add each outage's new notices to its count, in one statement for all."""
    connection.execute(
        update(feed_outages)
        .where(feed_outages.c.id == bindparam("b_outage"))
        .values({column: feed_outages.c[column] + bindparam("b_added")}),
        [{"b_outage": outage, "b_added": n} for outage, n in added.items()],
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

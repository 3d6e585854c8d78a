"""Holding a batch that looks like a data accident: judged when it ends, then confirmed
(its notifications go out) or held for a person to release or discard.

While a batch is unconfirmed its notifications wait in state `held`, and `held_status`
keeps each changed person's status from before it, which the public views show instead.
Release sends the notifications (each exactly once: they are ordinary outbox rows).
Discard restores the earlier statuses, marks the batch's events discarded, and cancels
its notifications: nobody is ever told about it.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from safevine.domain.errors import ConflictError, NotFoundError
from safevine.domain.notification_state import NotificationState as S
from safevine.store.driver_sql import Driver
from safevine.store.member_of import chunked, member_of
from safevine.store.public.tables import notifications
from safevine.store.records.audit import append
from safevine.store.schema import (
    batch_holds,
    custody_events,
    custody_status,
    facilities,
    held_status,
    ingest_batches,
)

SAMPLE = 20


class HoldError(ConflictError):
    """A hold that cannot be released or discarded: it was already decided."""


class NoSuchHoldError(HoldError, NotFoundError):
    pass


def keep_prior_status(connection: Connection, batch_id: int, person_ids: Sequence[int]) -> None:
    """Remember each person's status from before `batch_id` first changed it."""
    # One INSERT ... SELECT: the copy never leaves the database. A person the batch changed
    # before keeps their first copy by the key's conflict, not by an anti-join with
    # held_status: that table grows through a feed, and PostgreSQL planned the anti-join
    # from statistics taken while it was small, reading all of the batch's rows for every
    # chunk (seconds per chunk by the end of a million-event feed).
    driver = Driver(connection)
    driver.run(
        "INSERT INTO held_status (batch_id, person_id, had_status, state, facility_id, "
        "event_pk, event_id, occurred_at, sequence, left_custody_at, updated_at) "
        "SELECT CAST(? AS bigint), p.id, CASE WHEN s.person_id IS NULL THEN 0 ELSE 1 END, "
        "s.state, s.facility_id, s.event_pk, s.event_id, s.occurred_at, s.sequence, "
        "s.left_custody_at, s.updated_at "
        "FROM persons p LEFT JOIN custody_status s ON s.person_id = p.id "
        "WHERE p.id = ANY(?::bigint[]) "
        "ON CONFLICT (batch_id, person_id) DO NOTHING",
        [batch_id, driver.keys(person_ids)],
    )


def confirm_batch(connection: Connection, batch_id: int, now: datetime) -> int:
    """The batch is good: its notifications are queued and its snapshots dropped."""
    sent = connection.execute(
        update(notifications)
        .where(notifications.c.hold_batch_id == batch_id, notifications.c.state == S.HELD)
        .values(state=S.QUEUED, next_attempt_at=now, updated_at=now)
    ).rowcount
    connection.execute(delete(held_status).where(held_status.c.batch_id == batch_id))
    return int(sent)


def batch_detail(connection: Connection, batch_id: int) -> dict[str, Any]:
    """Counts by kind and facility, and a sample of changes by internal id."""
    e, f = custody_events, facilities
    counts = [
        {"kind": kind, "facility": code, "count": count}
        for kind, code, count in connection.execute(
            select(e.c.kind, f.c.code, func.count())
            .outerjoin(f, f.c.id == e.c.facility_id)
            .where(e.c.batch_id == batch_id)
            .group_by(e.c.kind, f.c.code)
            .order_by(func.count().desc())
        )
    ]
    sample = [
        {
            "event": pk,
            "person": person_id,
            "kind": kind,
            "facility": code,
            "occurred_at": occurred.isoformat(),
        }
        for pk, person_id, kind, code, occurred in connection.execute(
            select(e.c.id, e.c.person_id, e.c.kind, f.c.code, e.c.occurred_at)
            .outerjoin(f, f.c.id == e.c.facility_id)
            .where(e.c.batch_id == batch_id)
            .order_by(e.c.id)
            .limit(SAMPLE)
        )
    ]
    held = connection.execute(
        select(func.count())
        .select_from(notifications)
        .where(notifications.c.hold_batch_id == batch_id, notifications.c.state == S.HELD)
    ).scalar_one()
    return {"counts": counts, "sample": sample, "held_notifications": int(held)}


def hold_batch(connection: Connection, batch_id: int, rule: str, now: datetime) -> int:
    """Keep the batch's notifications waiting and its prior statuses public."""
    hold_id = connection.execute(
        insert(batch_holds)
        .values(
            batch_id=batch_id,
            state="held",
            rule=rule,
            detail=batch_detail(connection, batch_id),
            created_at=now,
        )
        .returning(batch_holds.c.id)
    ).scalar_one()
    append(
        connection,
        actor="safevine",
        action="batch_held",
        target=f"batch:{batch_id}",
        reason=rule,
        at=now,
    )
    return int(hold_id)


@dataclass(frozen=True)
class Hold:
    id: int
    batch_id: int
    batch_kind: str
    source: str
    state: str
    rule: str
    detail: dict[str, Any]
    created_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    note: str | None


def _hold(row: Any) -> Hold:
    return Hold(
        row.id,
        row.batch_id,
        row.kind,
        row.source,
        row.state,
        row.rule,
        row.detail,
        row.created_at,
        row.decided_at,
        row.decided_by,
        row.note,
    )


def _query() -> Any:
    return select(batch_holds, ingest_batches.c.kind, ingest_batches.c.source).join(
        ingest_batches, ingest_batches.c.id == batch_holds.c.batch_id
    )


def listing(connection: Connection, only_open: bool = False) -> list[Hold]:
    query = _query().order_by(batch_holds.c.id)
    if only_open:
        query = query.where(batch_holds.c.state == "held")
    return [_hold(r) for r in connection.execute(query)]


def get(connection: Connection, hold_id: int) -> Hold | None:
    row = connection.execute(_query().where(batch_holds.c.id == hold_id)).first()
    return _hold(row) if row else None


def _open(connection: Connection, hold_id: int) -> Any:
    row = connection.execute(
        select(batch_holds).where(batch_holds.c.id == hold_id).with_for_update()
    ).first()
    if row is None:
        raise NoSuchHoldError(f"no hold {hold_id}")
    if row.state != "held":
        raise HoldError(f"hold {hold_id} was already {row.state}")
    return row


def release(connection: Connection, hold_id: int, *, actor: str, now: datetime) -> int:
    """The batch was real: send its notifications. Returns how many were queued."""
    row = _open(connection, hold_id)
    queued = confirm_batch(connection, row.batch_id, now)
    connection.execute(
        update(batch_holds)
        .where(batch_holds.c.id == hold_id)
        .values(state="released", decided_at=now, decided_by=actor[:100])
    )
    append(
        connection,
        actor=actor,
        action="hold_release",
        target=f"hold:{hold_id}",
        reason=f"{queued} notifications queued",
        at=now,
    )
    return queued


def discard(
    connection: Connection,
    hold_id: int,
    *,
    actor: str,
    now: datetime,
    state: str = "discarded",
    note: str | None = None,
) -> int:
    """The batch was an accident: restore the statuses from before it, mark its events
    discarded, cancel its notifications. Returns how many statuses were restored."""
    row = _open(connection, hold_id)
    restored = revert_batch(connection, int(row.batch_id), now)
    connection.execute(
        update(batch_holds)
        .where(batch_holds.c.id == hold_id)
        .values(state=state, decided_at=now, decided_by=actor[:100], note=note)
    )
    append(
        connection,
        actor=actor,
        action=f"hold_{state}",
        target=f"hold:{hold_id}",
        reason=note or f"{restored} statuses restored",
        at=now,
    )
    return restored


def revert_batch(connection: Connection, batch_id: int, now: datetime) -> int:
    batch_events = select(custody_events.c.id).where(custody_events.c.batch_id == batch_id)
    restored = 0
    for prior in connection.execute(
        select(held_status).where(held_status.c.batch_id == batch_id)
    ).all():
        # Only where the batch's change is still the latest: a newer event stands.
        still = connection.execute(
            select(custody_status.c.person_id).where(
                custody_status.c.person_id == prior.person_id,
                custody_status.c.event_pk.in_(batch_events),
            )
        ).first()
        if still is None:
            continue
        if prior.had_status:
            connection.execute(
                update(custody_status)
                .where(custody_status.c.person_id == prior.person_id)
                .values(
                    state=prior.state,
                    facility_id=prior.facility_id,
                    event_pk=prior.event_pk,
                    event_id=prior.event_id,
                    occurred_at=prior.occurred_at,
                    sequence=prior.sequence,
                    left_custody_at=prior.left_custody_at,
                    updated_at=prior.updated_at,
                )
            )
        else:
            connection.execute(
                delete(custody_status).where(custody_status.c.person_id == prior.person_id)
            )
        restored += 1
    connection.execute(
        update(custody_events).where(custody_events.c.batch_id == batch_id).values(discarded_at=now)
    )
    connection.execute(
        update(notifications)
        .where(notifications.c.hold_batch_id == batch_id, notifications.c.state == S.HELD)
        .values(state=S.CANCELLED, cancel_reason="batch_discarded", updated_at=now)
    )
    connection.execute(delete(held_status).where(held_status.c.batch_id == batch_id))
    return restored


def open_holds_for_facilities(connection: Connection, facility_ids: Sequence[int]) -> list[int]:
    """Held roster batches that touched any of these facilities."""
    if not facility_ids:
        return []
    return [
        int(i)
        for i in connection.execute(
            select(batch_holds.c.id)
            .distinct()
            .join(ingest_batches, ingest_batches.c.id == batch_holds.c.batch_id)
            .join(custody_events, custody_events.c.batch_id == batch_holds.c.batch_id)
            .where(
                batch_holds.c.state == "held",
                ingest_batches.c.kind == "roster",
                custody_events.c.facility_id.in_(list(facility_ids)),
            )
            .order_by(batch_holds.c.id)
        ).scalars()
    ]


def facility_context(
    connection: Connection, codes: Sequence[str], batch_id: int
) -> dict[str, tuple[int, datetime | None]]:
    """Per facility code: people in custody there now, and the newest event already
    applied there by other batches (to spot a replayed file)."""
    found: dict[str, tuple[int, datetime | None]] = {}
    for part in chunked(list(codes)):
        ids = {
            int(i): code
            for code, i in connection.execute(
                select(facilities.c.code, facilities.c.id).where(
                    member_of(connection, facilities.c.code, part)
                )
            )
        }
        if not ids:
            continue
        population: dict[int, int] = dict(
            connection.execute(
                select(custody_status.c.facility_id, func.count())
                .where(
                    member_of(connection, custody_status.c.facility_id, list(ids)),
                    custody_status.c.state == "in_custody",
                )
                .group_by(custody_status.c.facility_id)
            ).all()
        )
        newest: dict[int, datetime] = dict(
            connection.execute(
                select(custody_events.c.facility_id, func.max(custody_events.c.occurred_at))
                .where(
                    member_of(connection, custody_events.c.facility_id, list(ids)),
                    custody_events.c.batch_id != batch_id,
                    custody_events.c.discarded_at.is_(None),
                    custody_events.c.retracted_at.is_(None),
                )
                .group_by(custody_events.c.facility_id)
            ).all()
        )
        for facility_id, code in ids.items():
            found[code] = (int(population.get(facility_id, 0)), newest.get(facility_id))
    return found

"""Retracting a custody event recorded in error: one staff action, in one transaction.

The event is kept, marked with who retracted it, when and why, so the history and the
audit trail stand; from then on it counts for nothing. In the same transaction:

- the person's status is derived again from their other events, exactly as if the
  retracted one had never been recorded (and so is the status a held batch keeps public,
  where it was that event's);
- every message about the event not yet handed to a provider is cancelled
  (`event_retracted`), so it never goes;
- each registration a message about it already reached (sent, delivered, acknowledged;
  or a call a person answered, or a machine took, that was to be placed again) is queued
  one `correction`, or the registration that replaced it for the same address.
  A correction is a message about a person like any other: sent only while the person is
  public, cancelled by a protection, held in quiet hours. It is queued only when the
  person is public now: a person the retraction leaves hidden (their only booking
  retracted, say) is told about to nobody.

A feed that sends the event's id again is refused, whatever it says (`records.events`).
"""

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, or_, select, update

from safevine.domain.call_repeats import CallOutcome, reached
from safevine.domain.custody_status import StatusEvent, derive_status
from safevine.domain.errors import ConflictError, NotFoundError
from safevine.domain.event_kinds import EventKind
from safevine.domain.notification_state import REACHED
from safevine.domain.notification_state import NotificationState as S
from safevine.store.decoy import real_events
from safevine.store.planner_hints import unindexed
from safevine.store.public.registrations import ACTIVE, REPLACED, UNSENT
from safevine.store.public.tables import call_attempts, notifications, registrations
from safevine.store.public.views import public_persons
from safevine.store.records.audit import append
from safevine.store.schema import custody_events, custody_status, facilities, held_status, persons
from safevine.store.write_priority import claim_priority

CORRECTION = "correction"
CANCEL_REASON = "event_retracted"
AUDIT_ACTION = "retract_event"


class RetractionError(ConflictError):
    """An event whose state does not allow a retraction: retracted already, or discarded
    with its held batch (either way it already counts for nothing)."""


class NoSuchEventError(NotFoundError):
    """No custody event has that event id."""


@dataclass(frozen=True)
class Retraction:
    """What a retraction did."""

    event_pk: int
    event_id: str
    kind: str
    person_id: int
    # The person's custody state and facility code before and after (None: no status).
    state_before: str | None
    facility_before: str | None
    state: str | None
    facility_code: str | None
    # Messages about the event not yet sent, now cancelled.
    cancelled: int
    # Active registrations a message about the event had reached, and corrections queued
    # for them (none when the person is not public).
    told: int
    corrections: int

    def as_json(self) -> dict[str, Any]:
        """For `event retract --json` and the staff API."""
        return {
            "event_id": self.event_id,
            "event": self.event_pk,
            "kind": self.kind,
            "person": self.person_id,
            "retracted": True,
            "status_before": {"custody_state": self.state_before, "facility": self.facility_before},
            "status": {"custody_state": self.state, "facility": self.facility_code},
            "cancelled": self.cancelled,
            "told": self.told,
            "corrections": self.corrections,
        }


def retract_event(
    connection: Connection, event_id: str, *, actor: str, reason: str, now: datetime
) -> Retraction:
    """Retract the event with this (feed) event id, in the caller's transaction, with its
    audit entry. NoSuchEventError if there is none, RetractionError if it was retracted
    already or discarded; either way nothing changes."""
    # On SQLite, ahead of the dispatchers' next batches (as a protection goes).
    claim_priority(connection)
    e = custody_events
    event = connection.execute(
        select(e).where(e.c.event_id == event_id, real_events()).with_for_update()
    ).first()
    if event is None:
        raise NoSuchEventError(f"no custody event has the event id {event_id!r}")
    if event.retracted_at is not None:
        raise RetractionError(
            f"event {event_id!r} was already retracted, on "
            f"{event.retracted_at:%Y-%m-%d %H:%M} UTC by {event.retracted_by}; nothing changed"
        )
    if event.discarded_at is not None:
        raise RetractionError(
            f"event {event_id!r} was discarded with its held batch on "
            f"{event.discarded_at:%Y-%m-%d %H:%M} UTC and already counts for nothing; "
            "nothing changed"
        )
    person_id, event_pk = int(event.person_id), int(event.id)
    connection.execute(
        update(e)
        .where(e.c.id == event_pk)
        .values(retracted_at=now, retracted_by=actor[:100], retraction_reason=reason)
    )
    before = _current(connection, person_id)
    after = derived_status(connection, person_id)
    _set_status(connection, person_id, before, after, now)
    _mend_held_statuses(connection, person_id, event_pk, now)

    ref = connection.execute(
        select(persons.c.public_ref).where(persons.c.id == person_id)
    ).scalar_one()
    registration_ids = [
        int(i)
        for i in connection.execute(
            select(registrations.c.id).where(registrations.c.person_ref == ref)
        ).scalars()
    ]
    cancelled = _cancel_unsent(connection, registration_ids, event_pk, now)
    told = _told(connection, registration_ids, event_pk, ref)
    corrections = _queue_corrections(connection, told, ref, event_pk, now)
    facility_before = _facility_code(connection, before.facility_id if before else None)
    facility_code = _facility_code(connection, after["facility_id"] if after else None)
    state_before = before.state if before is not None else None
    state_after = str(after["state"]) if after is not None else None
    append(
        connection,
        actor=actor,
        action=AUDIT_ACTION,
        target=f"person:{person_id} event:{event_pk}",
        reason=(
            f"{reason} [status {state_before or 'none'} -> {state_after or 'none'}; "
            f"{cancelled} unsent messages cancelled; {corrections} corrections queued "
            f"for {len(told)} registrations told]"
        ),
        at=now,
    )
    return Retraction(
        event_pk=event_pk,
        event_id=event_id,
        kind=str(event.kind),
        person_id=person_id,
        state_before=state_before,
        facility_before=facility_before,
        state=state_after,
        facility_code=facility_code,
        cancelled=cancelled,
        told=len(told),
        corrections=corrections,
    )


def derived_status(
    connection: Connection, person_id: int, *, without_batch: int | None = None
) -> dict[str, Any] | None:
    """The person's status from their whole history but what counts for nothing (retracted
    and discarded events), and without `without_batch`'s events if given: the values of a
    `custody_status` row but its person and time of update, or None if nothing in their
    history sets a status."""
    e, f = custody_events, facilities
    query = (
        select(
            e.c.id,
            e.c.event_id,
            e.c.kind,
            e.c.occurred_at,
            e.c.sequence,
            e.c.facility_id,
            f.c.code,
        )
        .outerjoin(f, f.c.id == e.c.facility_id)
        .where(
            e.c.person_id == person_id,
            e.c.retracted_at.is_(None),
            e.c.discarded_at.is_(None),
            e.c.kind != EventKind.HEARING_SCHEDULED.value,
        )
    )
    if without_batch is not None:
        query = query.where(or_(e.c.batch_id.is_(None), e.c.batch_id != without_batch))
    rows = {r.event_id: r for r in connection.execute(query)}
    status = derive_status(
        StatusEvent(r.event_id, EventKind(r.kind), r.occurred_at, r.sequence, r.code)
        for r in rows.values()
    )
    if status is None:
        return None
    chosen = rows[status.event_id]
    return {
        "state": status.state.value,
        "facility_id": chosen.facility_id,
        "event_pk": int(chosen.id),
        "event_id": status.event_id,
        "occurred_at": status.since,
        "sequence": status.order_key[1],
        "left_custody_at": status.left_custody_at,
    }


def _current(connection: Connection, person_id: int) -> Any:
    return connection.execute(
        select(custody_status).where(custody_status.c.person_id == person_id).with_for_update()
    ).first()


def _set_status(
    connection: Connection,
    person_id: int,
    before: Any,
    after: dict[str, Any] | None,
    now: datetime,
) -> None:
    if after is None:
        if before is not None:
            connection.execute(
                delete(custody_status).where(custody_status.c.person_id == person_id)
            )
        return
    if before is None:
        connection.execute(
            insert(custody_status).values(person_id=person_id, updated_at=now, **after)
        )
    elif before.event_pk != after["event_pk"]:
        connection.execute(
            update(custody_status)
            .where(custody_status.c.person_id == person_id)
            .values(updated_at=now, **after)
        )


def _mend_held_statuses(
    connection: Connection, person_id: int, event_pk: int, now: datetime
) -> None:
    """A batch under judgement keeps the person's status from before it public; where that
    status was the retracted event's, it becomes the one derived without the event (and
    without the batch), so neither the public view nor a discard brings the event back."""
    batches = connection.execute(
        select(held_status.c.batch_id).where(
            held_status.c.person_id == person_id, held_status.c.event_pk == event_pk
        )
    ).scalars()
    for batch_id in list(batches):
        prior = derived_status(connection, person_id, without_batch=int(batch_id))
        values: dict[str, Any] = (
            {"had_status": 1, **prior, "updated_at": now}
            if prior is not None
            else {
                "had_status": 0,
                "state": None,
                "facility_id": None,
                "event_pk": None,
                "event_id": None,
                "occurred_at": None,
                "sequence": None,
                "left_custody_at": None,
                "updated_at": None,
            }
        )
        connection.execute(
            update(held_status)
            .where(held_status.c.batch_id == batch_id, held_status.c.person_id == person_id)
            .values(**values)
        )


def _cancel_unsent(
    connection: Connection, registration_ids: list[int], event_pk: int, now: datetime
) -> int:
    """Cancel what is still to send about the event. On PostgreSQL a message a worker is
    sending right now is locked until its send is recorded: this waits for it, then finds
    it sent (and its registrant is told the correction)."""
    if not registration_ids:
        return 0
    n = notifications
    return int(
        connection.execute(
            update(n)
            .where(
                n.c.registration_id.in_(registration_ids),
                n.c.event_pk == event_pk,
                # By registration and event, never among every message still to send:
                # SQLite rates a long list of registrations dearer than the state index.
                unindexed(n.c.state).in_(UNSENT),
            )
            .values(state=S.CANCELLED, cancel_reason=CANCEL_REASON, updated_at=now)
        ).rowcount
    )


@dataclass(frozen=True)
class _Told:
    """A registration to correct: the messages about the event that reached it (or the
    registration it replaced), by idempotency key, and what the first of them said."""

    registration_id: int
    keys: list[str]
    content: dict[str, Any]


def _told(
    connection: Connection, registration_ids: list[int], event_pk: int, ref: str
) -> list[_Told]:
    """The active registrations a message about the event reached: the registration it
    went to, or, where that one was replaced since (the same address registered again),
    the one that replaced it. A registration ended otherwise (by its registrant, by STOP,
    by a protection) is told nothing more.

    Reached: a provider took it (sent, delivered, acknowledged), or it is a call that was
    to be placed again (just cancelled) after one that a person answered, or a machine
    took as they allowed: they may have heard it."""
    if not registration_ids:
        return []
    n, r = notifications, registrations
    about = connection.execute(
        select(
            n.c.id.label("notification_id"),
            n.c.idempotency_key,
            n.c.content,
            n.c.state.label("notification_state"),
            r.c.id,
            r.c.state,
            r.c.end_reason,
            r.c.address_index,
            r.c.channel,
            r.c.allow_voicemail,
        )
        .join(r, r.c.id == n.c.registration_id)
        .where(n.c.registration_id.in_(registration_ids), n.c.event_pk == event_pk)
        .order_by(n.c.id)
    ).all()
    calls: dict[int, list[CallOutcome]] = {}
    if about:
        for notification_id, outcome in connection.execute(
            select(call_attempts.c.notification_id, call_attempts.c.outcome).where(
                call_attempts.c.notification_id.in_([a.notification_id for a in about]),
                call_attempts.c.outcome.is_not(None),
            )
        ):
            calls.setdefault(int(notification_id), []).append(CallOutcome(outcome))
    found: dict[int, _Told] = {}
    for row in about:
        heard = calls.get(int(row.notification_id), [])
        if row.notification_state not in REACHED and not (
            CallOutcome.ACKNOWLEDGED in heard or reached(heard, bool(row.allow_voicemail))
        ):
            continue
        target: int | None = int(row.id) if row.state == ACTIVE else None
        if target is None and row.end_reason == REPLACED:
            target = connection.execute(
                select(r.c.id)
                .where(
                    r.c.address_index == row.address_index,
                    r.c.person_ref == ref,
                    r.c.channel == row.channel,
                    r.c.state == ACTIVE,
                )
                .order_by(r.c.id.desc())
                .limit(1)
            ).scalar()
        if target is None:
            continue
        if target in found:
            found[target].keys.append(row.idempotency_key)
        else:
            found[target] = _Told(int(target), [row.idempotency_key], dict(row.content))
    return list(found.values())


def _queue_corrections(
    connection: Connection, told: list[_Told], ref: str, event_pk: int, now: datetime
) -> int:
    """One queued correction per registration told, stating the person's status as the
    public sees it now; none when the person is not public now."""
    if not told:
        return 0
    p = public_persons
    shown = connection.execute(
        select(
            p.c.custody_state,
            p.c.status_since,
            p.c.facility_name,
            p.c.facility_city,
            p.c.facility_state,
            p.c.facility_time_zone,
        ).where(p.c.public_ref == ref)
    ).first()
    if shown is None:
        return 0
    status = {
        "state": shown.custody_state,
        "since": shown.status_since.isoformat() if shown.status_since else None,
        "facility_name": shown.facility_name,
        "facility_city": shown.facility_city,
        "facility_state": shown.facility_state,
        "facility_time_zone": shown.facility_time_zone,
    }
    rows = [
        {
            "registration_id": t.registration_id,
            "purpose": CORRECTION,
            "event_pk": None,
            # Like an event's content, it names no one: the name is read from the public
            # view when it is sent.
            "content": {
                "retracted_event": event_pk,
                "retracted": t.content,
                "status": status,
                "corrects": t.keys,
            },
            "state": S.QUEUED,
            "next_attempt_at": now,
            "idempotency_key": secrets.token_hex(16),
            "created_at": now,
            "updated_at": now,
        }
        for t in told
    ]
    connection.execute(insert(notifications), rows)
    return len(rows)


def _facility_code(connection: Connection, facility_id: int | None) -> str | None:
    if facility_id is None:
        return None
    code = connection.execute(
        select(facilities.c.code).where(facilities.c.id == facility_id)
    ).scalar()
    return None if code is None else str(code)

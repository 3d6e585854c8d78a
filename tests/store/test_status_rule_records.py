"""The status the store keeps, and the alerts it writes, against the domain rule, for any
histories recorded over several calls of `record_events` (as a feed's chunks are).

Today `record_events` folds `advance` over each person's new events in Python; the plan in
docs/ingest-redesign.md moves that into set statements over a chunk. Either way, after
every call:
- each person's `custody_status` row is `derive_status` of every event stored for them
  (state, facility, since, sequence, event id, left-custody time);
- the events that alert a registrant are exactly those whose arrival, in the order given,
  changed `advance`'s result, and every hearing; a resend alerts no one again;
- the count of status changes a call reports is the number of people whose status moved;
- an alert's content is the event (kind, time, details) and its facility, and no name;
- in a batch under judgement (`provisional`), alerts are written held for the batch, and
  each person the batch moved has the status from before the batch kept for the public.
On SQLite and PostgreSQL, with ties in time and sequence, late events, hearings, resends
and several events a person a call.
"""

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import given, note
from hypothesis import strategies as st
from sqlalchemy import Engine, insert, select

from safevine.domain.custody_event import CustodyEventInput, PersonFacts
from safevine.domain.custody_status import CustodyStatus, StatusEvent, advance, derive_status
from safevine.domain.event_kinds import EventKind
from safevine.store.public.tables import notifications, registrations
from safevine.store.records.batches import start_batch
from safevine.store.records.events import record_events
from safevine.store.schema import custody_events, custody_status, facilities, held_status, persons
from tests.builders import load_facilities
from tests.ingest.feed_properties import facility_code, fuzz_settings, next_tag

BASE = datetime(2026, 3, 1, 8, tzinfo=UTC)
# Few moments and sequences, so that events tie on one or both.
MOMENTS = [BASE + timedelta(hours=h) for h in (0, 1, 1, 3, 30)]
PEOPLE = 3


@dataclass(frozen=True)
class Drawn:
    """One event of a call: whose, what, when (an index into MOMENTS), its sequence and
    facility; or, with `resend` set, the earlier event of that index sent again."""

    person: int
    kind: EventKind
    moment: int
    sequence: int
    facility: int
    resend: int | None
    # Begins the event id, so that ties in time and sequence are broken by ids that
    # differ first in characters of every UTF-8 length: Python orders them by code point,
    # which a form of the rule in SQL must match (SQLite compares their bytes).
    label: str


def _drawn() -> st.SearchStrategy[Drawn]:
    return st.builds(
        Drawn,
        person=st.integers(0, PEOPLE - 1),
        kind=st.sampled_from(list(EventKind)),
        moment=st.integers(0, len(MOMENTS) - 1),
        sequence=st.integers(0, 2),
        facility=st.integers(0, 1),
        resend=st.none() | st.integers(0, 30),
        label=st.sampled_from(["", "a", "Z", "ß", "é", "\uffff", "\U0001f600"]),
    )


CALLS = st.lists(st.lists(_drawn(), min_size=1, max_size=8), min_size=1, max_size=3)


def _a_number(tag: int, person: int) -> str:
    return f"4{tag:05d}{person:03d}"


def _status_event(e: CustodyEventInput) -> StatusEvent:
    return StatusEvent(e.event_id, e.kind, e.occurred_at, e.sequence, e.facility_code)


def _register_everyone(engine: Engine, a_numbers: list[str]) -> None:
    """An active registration on each person, wanting every kind of event."""
    now = datetime.now(UTC)
    with engine.begin() as connection:
        refs = connection.execute(
            select(persons.c.public_ref).where(persons.c.a_number.in_(a_numbers))
        ).scalars()
        for ref in refs:
            connection.execute(
                insert(registrations).values(
                    person_ref=ref,
                    number=100000 + secrets.randbelow(900000),
                    channel="email",
                    address_key_id="k",
                    address_ciphertext=secrets.token_bytes(8),
                    address_index=secrets.token_hex(16),
                    address_hint="a•••@example.org",
                    language="en",
                    wording="standard",
                    events=[k.value for k in EventKind],
                    state="active",
                    pending_token_hash=secrets.token_hex(16),
                    manage_token_hash=secrets.token_hex(16),
                    created_at=now,
                    updated_at=now,
                )
            )


def _stored_status(engine: Engine, a_number: str) -> tuple[object, ...] | None:
    with engine.connect() as connection:
        row = connection.execute(
            select(
                custody_status.c.state,
                facilities.c.code,
                custody_status.c.occurred_at,
                custody_status.c.sequence,
                custody_status.c.event_id,
                custody_status.c.left_custody_at,
                custody_events.c.event_id,
            )
            .join(persons, persons.c.id == custody_status.c.person_id)
            .outerjoin(facilities, facilities.c.id == custody_status.c.facility_id)
            .join(custody_events, custody_events.c.id == custody_status.c.event_pk)
            .where(persons.c.a_number == a_number)
        ).first()
    return None if row is None else tuple(row)


def _expected_status(status: CustodyStatus | None) -> tuple[object, ...] | None:
    if status is None:
        return None
    return (
        status.state.value,
        status.facility_code,
        status.since,
        status.order_key[1],
        status.event_id,
        status.left_custody_at,
        status.event_id,  # the row's event_pk names the same event
    )


def _stored_events(engine: Engine, a_number: str) -> list[StatusEvent]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                custody_events.c.event_id,
                custody_events.c.kind,
                custody_events.c.occurred_at,
                custody_events.c.sequence,
                facilities.c.code,
            )
            .join(persons, persons.c.id == custody_events.c.person_id)
            .outerjoin(facilities, facilities.c.id == custody_events.c.facility_id)
            .where(persons.c.a_number == a_number)
        ).all()
    return [StatusEvent(r[0], EventKind(r[1]), r[2], r[3], r[4]) for r in rows]


def _details(kind: EventKind, other_code: str) -> dict[str, str]:
    """Details as the feed parser makes them for each kind."""
    return {
        EventKind.RELEASED: {"reason": "bond"},
        EventKind.REMOVED: {"destination_country": "GT"},
        EventKind.HEARING_SCHEDULED: {
            "court": "Immigration Court, Eloy",
            "hearing_at": (BASE + timedelta(days=14)).isoformat(),
        },
        EventKind.TRANSFERRED: {"from_facility_code": other_code},
    }.get(kind, {})


def _content(engine: Engine, event: CustodyEventInput) -> dict[str, object]:
    """What an alert about `event` must hold: the event and where it happened, no one's
    name (the name is read from the public view when the message is sent)."""
    with engine.connect() as connection:
        place = connection.execute(
            select(
                facilities.c.name, facilities.c.city, facilities.c.state, facilities.c.time_zone
            ).where(facilities.c.code == event.facility_code)
        ).one()
    return {
        "kind": event.kind.value,
        "occurred_at": event.occurred_at.isoformat(),
        "facility_name": place.name,
        "facility_city": place.city,
        "facility_state": place.state,
        "facility_time_zone": place.time_zone,
        "details": event.details,
    }


def _alerted(engine: Engine, tag: int) -> list[tuple[str, str, int | None, dict[str, object]]]:
    """The event id, state, hold batch and content of the example's event notifications,
    one per notification."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                custody_events.c.event_id,
                notifications.c.state,
                notifications.c.hold_batch_id,
                notifications.c.content,
            )
            .join(notifications, notifications.c.event_pk == custody_events.c.id)
            .where(
                notifications.c.purpose == "event",
                custody_events.c.event_id.like(f"t{tag}-%"),
            )
        ).all()
    return [tuple(row) for row in rows]  # type: ignore[misc]


def _kept(engine: Engine, batch_id: int) -> dict[str, tuple[object, ...]]:
    """The status kept for the public by the batch, by A-number."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                persons.c.a_number,
                held_status.c.had_status,
                held_status.c.state,
                facilities.c.code,
                held_status.c.occurred_at,
                held_status.c.sequence,
                held_status.c.event_id,
                held_status.c.left_custody_at,
            )
            .join(persons, persons.c.id == held_status.c.person_id)
            .outerjoin(facilities, facilities.c.id == held_status.c.facility_id)
            .where(held_status.c.batch_id == batch_id)
        ).all()
    return {row[0]: tuple(row[1:]) for row in rows}


@fuzz_settings(50)
@given(calls=CALLS, provisional=st.booleans())
def test_statuses_and_alerts_follow_the_domain_rule(
    engine: Engine, calls: list[list[Drawn]], provisional: bool
) -> None:
    tag = next_tag()
    codes = [facility_code(tag, 0), facility_code(tag, 1)]
    load_facilities(engine, *codes)
    a_numbers = [_a_number(tag, p) for p in range(PEOPLE)]
    # Everyone booked long before, then registered for: the histories start from a status.
    first = [
        CustodyEventInput(
            f"b{tag}-{p}", EventKind.BOOKED, BASE - timedelta(days=30), PersonFacts(a), codes[0]
        )
        for p, a in enumerate(a_numbers)
    ]
    with engine.begin() as connection:
        record_events(connection, first, origin="feed", now=BASE, source="t")
    _register_everyone(engine, a_numbers)

    status: dict[str, CustodyStatus | None] = {
        a: advance(None, _status_event(e)) for a, e in zip(a_numbers, first, strict=True)
    }
    before_batch = dict(status)
    batch_id: int | None = None
    if provisional:
        with engine.begin() as connection:
            batch_id = start_batch(connection, "events", f"t{tag}")
    sent: list[CustodyEventInput] = []  # every event stored so far, in order
    alerted: list[str] = []
    ever_moved: set[str] = set()
    for call_number, call in enumerate(calls):
        events: list[CustodyEventInput] = []
        for n, d in enumerate(call):
            if d.resend is not None and sent:
                events.append(sent[d.resend % len(sent)])
                continue
            events.append(
                CustodyEventInput(
                    f"t{tag}-{d.label}-{call_number}-{n}",
                    d.kind,
                    MOMENTS[d.moment],
                    PersonFacts(a_numbers[d.person]),
                    codes[d.facility],
                    d.sequence,
                    _details(d.kind, codes[1 - d.facility]),
                )
            )
        note(f"call {call_number}: {events}")
        # The model: each new event in the order given, `advance` over the status so far.
        moved: set[str] = set()
        stored_ids = {e.event_id for e in sent}
        for e in events:
            if e.event_id in stored_ids:
                continue  # a resend: stored once, alerts once
            stored_ids.add(e.event_id)
            sent.append(e)
            a_number = e.person.a_number
            after = advance(status[a_number], _status_event(e))
            if after is not status[a_number] and after is not None:
                status[a_number] = after
                moved.add(a_number)
                ever_moved.add(a_number)
                alerted.append(e.event_id)
            elif e.kind == EventKind.HEARING_SCHEDULED:
                alerted.append(e.event_id)
        with engine.begin() as connection:
            result = record_events(
                connection,
                events,
                origin="feed",
                now=BASE,
                source="t",
                batch_id=batch_id,
                provisional=provisional,
            )
        assert not result.errors, result.errors
        assert result.status_changes == len(moved)
        for a_number in a_numbers:
            kept = _stored_status(engine, a_number)
            assert kept == _expected_status(status[a_number]), a_number
            assert kept == _expected_status(derive_status(_stored_events(engine, a_number)))
        written = _alerted(engine, tag)
        assert sorted(event_id for event_id, _, _, _ in written) == sorted(alerted)
        way = ("held", batch_id) if provisional else ("queued", None)
        assert all((state, batch) == way for _, state, batch, _ in written), written
        by_id = {e.event_id: e for e in sent}
        for event_id, _, _, content in written:
            assert content == _content(engine, by_id[event_id]), event_id
        if batch_id is not None:
            kept = {
                a: (1, *_expected_status(before_batch[a])[:-1])  # type: ignore[misc]
                for a in ever_moved
            }
            assert _kept(engine, batch_id) == kept

"""Anomalous batches are held: no false storm of alerts, and nothing lost.

The 2015 case: a routine database update made a notification service tell victims their
attackers had been released. Here a truncated roster, a replayed file or a mass move is
applied to the records but its notifications wait for a person to decide."""

import json
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import func, select

from safevine.ingest.events import ingest_events
from safevine.ingest.protections import ingest_protections
from safevine.ingest.roster import ingest_roster
from safevine.store.engine import make_engine
from safevine.store.public.lookup import by_a_number
from safevine.store.public.tables import notifications
from safevine.store.records import delivery_report, holds
from safevine.store.records.persons import person_ids_by_a_number
from safevine.store.records.protection import protect
from safevine.store.schema import custody_events
from tests.builders import (
    NOW,
    ROSTER_HEADER,
    csv_lines,
    days_ago,
    event,
    jsonl,
    load_facilities,
    person,
)
from tests.notify.conftest import Delivery

HEADER = ROSTER_HEADER
SAFEVINE = Path(sys.executable).parent / "safevine"


def a(n: int) -> str:
    return f"5{n:08d}"


def roster(at_days: float, placements: dict[str, range], **options: object) -> object:
    rows = [
        [days_ago(at_days).isoformat(), facility, a(n), "Nombre", f"Persona{n}", "1985-02-03", "MX"]
        for facility, people in placements.items()
        for n in people
    ]
    return csv_lines(HEADER, *rows)


def populate(delivery: Delivery, people: int, registered: int) -> None:
    """`people` in custody at F1 (cleared, public), the first `registered` followed by email."""
    load_facilities(delivery.engine, "F2")
    first = ingest_roster(delivery.engine, roster(10, {"F1": range(people)}), source="r0.csv")
    assert first.status == "completed"
    rows = [[a(n), "cleared", NOW.date().isoformat()] for n in range(people)]
    ingest_protections(
        delivery.engine, csv_lines(["a_number", "status", "as_of"], *rows), source="p.csv"
    )
    for n in range(registered):
        delivery.register(delivery.ref(a(n)), f"r{n}@example.org")
    delivery.dispatch()  # the confirmation codes
    delivery.sink.received.clear()


def alerts(delivery: Delivery) -> list[str]:
    delivery.dispatch()
    return [r.message_id for r in delivery.sink.received if "Persona" in r.text]


def state_of(delivery: Delivery, n: int) -> str | None:
    """What the public sees of person n."""
    with delivery.public.connect() as connection:
        people = by_a_number(connection, a(n), "MX")
    return people[0].custody_state if people else None


def test_a_normal_days_churn_passes_straight_through(delivery: Delivery) -> None:
    populate(delivery, people=100, registered=5)
    # 4% churn: people 0-2 released, 3 moved to F2, two new bookings.
    summary = ingest_roster(
        delivery.engine, roster(9, {"F1": range(4, 102), "F2": [3]}), source="r1.csv"
    )
    assert summary.status == "completed" and summary.hold_id is None
    assert summary.derived_events == 3 + 1 + 2
    assert len(alerts(delivery)) == 4  # registrants of people 0-3 hear at once
    with delivery.engine.connect() as connection:
        assert holds.listing(connection) == []


def test_a_truncated_roster_is_held_then_resolved_by_a_full_one_with_no_alert(
    delivery: Delivery,
) -> None:
    populate(delivery, people=40, registered=10)
    truncated = ingest_roster(delivery.engine, roster(9, {"F1": range(20, 40)}), source="half.csv")
    assert truncated.status == "held" and truncated.hold_id is not None
    assert "lists 20 people" in truncated.notes[-1] or "would leave" in truncated.notes[-1]
    # The records hold the data; the public still sees the last confirmed state.
    assert state_of(delivery, 0) == "in_custody"
    with delivery.engine.connect() as connection:
        assert (
            connection.execute(
                select(func.count())
                .select_from(custody_events)
                .where(custody_events.c.batch_id == truncated.batch_id)
            ).scalar_one()
            == 20
        )
    assert alerts(delivery) == []
    full = ingest_roster(delivery.engine, roster(8, {"F1": range(40)}), source="full.csv")
    assert full.status == "completed"
    assert any(f"hold {truncated.hold_id} resolved" in note for note in full.notes)
    assert alerts(delivery) == []  # not one false "released", not one false "booked"
    assert state_of(delivery, 0) == "in_custody"
    with delivery.engine.connect() as connection:
        hold = holds.get(connection, truncated.hold_id)
        assert hold is not None and hold.state == "resolved"
        cancelled = connection.execute(
            select(func.count())
            .select_from(notifications)
            .where(notifications.c.cancel_reason == "batch_discarded")
        ).scalar_one()
    assert cancelled == 10


def test_a_replayed_old_file_is_held(delivery: Delivery) -> None:
    populate(delivery, people=5, registered=1)
    who = person(a(0), "Nombre", "Persona0", born=date(1985, 2, 3), country="MX")
    today = ingest_events(
        delivery.engine,
        jsonl(event("new-1", "transferred", days_ago(1), who)),
        source="today.jsonl",
        fmt="jsonl",
    )
    assert (today.status, today.applied) == ("completed", 1)
    delivery.sink.received.clear()
    replay = ingest_events(
        delivery.engine,
        jsonl(event("old-1", "released", days_ago(90), who, reason="bond")),
        source="replay.jsonl",
        fmt="jsonl",
    )
    assert replay.status == "held" and "replayed" in replay.notes[-1]


def test_future_dated_events_are_held(delivery: Delivery) -> None:
    populate(delivery, people=5, registered=1)
    who = person(a(0), "Nombre", "Persona0", born=date(1985, 2, 3), country="MX")
    future = ingest_events(
        delivery.engine,
        jsonl(event("f-1", "released", NOW + timedelta(days=2), who, reason="bond")),
        source="future.jsonl",
        fmt="jsonl",
    )
    assert future.status == "held" and "future" in future.notes[-1]
    assert alerts(delivery) == []
    assert state_of(delivery, 0) == "in_custody"


def test_a_real_mass_transfer_is_held_and_released_exactly_once(delivery: Delivery) -> None:
    populate(delivery, people=30, registered=30)
    closing = ingest_roster(
        delivery.engine, roster(9, {"F2": range(30)}), source="closing.csv", declared=["F1"]
    )
    assert closing.status == "held"
    assert alerts(delivery) == []
    with delivery.engine.begin() as connection:
        queued = holds.release(connection, closing.hold_id, actor="supervisor", now=NOW)
    assert queued == 30
    sent = alerts(delivery)
    assert len(sent) == len(set(sent)) == 30
    assert alerts(delivery) == sent  # a second pass sends nothing more
    assert state_of(delivery, 0) == "in_custody"


def test_discarding_reverts_and_alerts_nobody(delivery: Delivery) -> None:
    populate(delivery, people=20, registered=5)
    bad = ingest_roster(delivery.engine, roster(9, {"F1": range(10, 20)}), source="bad.csv")
    assert bad.status == "held"
    with delivery.engine.begin() as connection:
        restored = holds.discard(connection, bad.hold_id, actor="supervisor", now=NOW)
    assert restored == 10
    assert alerts(delivery) == []
    with delivery.engine.connect() as connection:
        discarded = connection.execute(
            select(func.count())
            .select_from(custody_events)
            .where(custody_events.c.discarded_at.is_not(None))
        ).scalar_one()
    assert discarded == 10


def test_the_held_state_survives_a_restart_and_shows_in_the_report(delivery: Delivery) -> None:
    populate(delivery, people=20, registered=2)
    held = ingest_roster(delivery.engine, roster(9, {"F1": range(10, 20)}), source="bad.csv")
    delivery.engine.dispose()
    url = delivery.settings.database_url
    again = make_engine(url)  # a new process's view of the same database
    with again.connect() as connection:
        [hold] = holds.listing(connection, only_open=True)
        report = delivery_report.build(connection).as_json()
    again.dispose()
    assert hold.id == held.hold_id
    assert [h["hold"] for h in report["holds"]] == [held.hold_id]
    assert report["holds"][0]["age_seconds"] >= 0
    listed = subprocess.run(
        [str(SAFEVINE), "holds", "list", "--json"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "SAFEVINE_DATABASE_URL": url, "COLUMNS": "200"},
    )
    [shown] = json.loads(listed.stdout)
    assert shown["id"] == held.hold_id and shown["counts"]


def test_protecting_someone_in_a_held_batch_cancels_their_held_messages(
    delivery: Delivery,
) -> None:
    populate(delivery, people=30, registered=3)
    held = ingest_roster(
        delivery.engine, roster(9, {"F2": range(30)}), source="move.csv", declared=["F1"]
    )
    assert held.status == "held"
    with delivery.engine.begin() as connection:
        person_id = person_ids_by_a_number(connection, [a(0)])[a(0)]
        protect(connection, person_id, actor="t", source="staff", reason="1367", now=NOW)
        states = connection.execute(
            select(notifications.c.state, func.count())
            .where(notifications.c.purpose == "event")
            .group_by(notifications.c.state)
        ).all()
    assert dict(states) == {"held": 2, "cancelled": 1}
    with delivery.engine.begin() as connection:
        assert holds.release(connection, held.hold_id, actor="supervisor", now=NOW) == 2
    sent = alerts(delivery)
    assert len(sent) == 2
    assert all("Persona0 " not in r.text for r in delivery.sink.received)

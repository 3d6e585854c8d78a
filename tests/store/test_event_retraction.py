"""Retracting a custody event recorded in error, in the store: the status is derived again
exactly as if the event had never been recorded, the event stays in the history marked,
the audit entry commits with it, a feed cannot bring it back, and every refusal names
what it refuses and changes nothing. On SQLite and PostgreSQL."""

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from safevine.actions import events as event_actions
from safevine.actions.actor import Actor
from safevine.cli import exit_code
from safevine.domain.errors import ConflictError, FieldError, NotFoundError
from safevine.ingest.events import ingest_events
from safevine.ingest.protections import ingest_protections
from safevine.store.engine import make_engine
from safevine.store.public import lookup
from safevine.store.records import holds
from safevine.store.records.person_view import staff_view
from safevine.store.records.retraction import Retraction, RetractionError
from safevine.store.schema import (
    audit_log,
    custody_events,
    custody_status,
    facilities,
    ingest_rejects,
    persons,
)
from safevine.web.staff.refusals import status_of
from tests.builders import NOW, csv_lines, days_ago, event, jsonl, load_facilities, person
from tests.canaries import PUBLIC, UNSCREENED, plant
from tests.conftest import Databases

SUPERVISOR = Actor("sam-supervisor")
WHO = person(PUBLIC.a_number, PUBLIC.given, PUBLIC.family, born=PUBLIC.born, country="MX")


def ingest(engine: Engine, *records: dict[str, Any], source: str = "feed.jsonl") -> Any:
    return ingest_events(engine, jsonl(*records), source=source, fmt="jsonl")


def retract(engine: Engine, event_id: str, reason: str = "entered in error") -> Retraction:
    with engine.begin() as connection:
        return event_actions.retract(connection, SUPERVISOR, event_id, reason, NOW)


def status_of_person(engine: Engine, a_number: str) -> tuple[Any, ...] | None:
    with engine.connect() as connection:
        row = connection.execute(
            select(
                custody_status.c.state,
                facilities.c.code,
                custody_status.c.event_id,
                custody_status.c.occurred_at,
                custody_status.c.sequence,
                custody_status.c.left_custody_at,
            )
            .join(persons, persons.c.id == custody_status.c.person_id)
            .outerjoin(facilities, facilities.c.id == custody_status.c.facility_id)
            .where(persons.c.a_number == a_number)
        ).first()
    return None if row is None else tuple(row)


def public_status(engine: Engine, a_number: str) -> list[tuple[str, str | None]]:
    with engine.connect() as connection:
        return [
            (p.custody_state, p.facility_name)
            for p in lookup.by_a_number(connection, a_number, "MX")
        ]


def audit_entries(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(select(audit_log).order_by(audit_log.c.seq)))


def test_a_mistaken_release_retracted_puts_the_person_back_in_custody(engine: Engine) -> None:
    plant(engine)
    assert ingest(engine, event("rel-wrong", "released", days_ago(1), WHO, reason="bond")).applied
    assert public_status(engine, PUBLIC.a_number) == [("released", "Facility F1")]

    done = retract(engine, "rel-wrong", "released the wrong person: a data entry error")

    assert (done.state_before, done.state, done.facility_code) == ("released", "in_custody", "F1")
    assert done.kind == "released" and (done.cancelled, done.told, done.corrections) == (0, 0, 0)
    state, facility, event_id, *_ = status_of_person(engine, PUBLIC.a_number) or ()
    assert (state, facility, event_id) == ("in_custody", "F1", f"book-{PUBLIC.a_number}")
    # The public search shows the status derived again, at once.
    assert public_status(engine, PUBLIC.a_number) == [("in_custody", "Facility F1")]
    # Never deleted: the history keeps it, marked with who, when and why.
    with engine.connect() as connection:
        view = staff_view(connection, PUBLIC.a_number)
    assert view is not None
    [kept] = [e for e in view.history if e.event_id == "rel-wrong"]
    assert kept.retracted_at == NOW and kept.retracted_by == SUPERVISOR.name
    assert kept.retraction_reason == "released the wrong person: a data entry error"
    # One audit entry, in the same transaction: the event and person by internal id, the
    # reason, what it did.
    last = audit_entries(engine)[-1]
    assert (last.actor, last.action) == (SUPERVISOR.name, "retract_event")
    assert last.target == f"person:{done.person_id} event:{done.event_pk}"
    assert last.reason.startswith("released the wrong person: a data entry error [")
    assert "status released -> in_custody" in last.reason
    assert "0 unsent messages cancelled; 0 corrections queued for 0 registrations" in last.reason


HISTORY = [
    # (suffix, kind, days ago, facility): a booking, two transfers, a release, a hearing,
    # and a late transfer that arrives last and only fills in history.
    ("a", "booked", 10, "F1"),
    ("b", "transferred", 6, "F2"),
    ("c", "released", 2, None),
    ("d", "hearing_scheduled", 1.5, "F2"),
    ("e", "returned", 1, "F3"),
    ("f", "transferred", 8, "F3"),
]


def _history(a_number: str, leave_out: str | None = None) -> list[dict[str, Any]]:
    who = person(a_number, "Ana", f"Caso{a_number[-2:]}", country="MX")
    records = []
    for suffix, kind, days, facility in HISTORY:
        if suffix == leave_out:
            continue
        details: dict[str, Any] = {}
        if kind == "released":
            details["reason"] = "parole"
        if kind == "hearing_scheduled":
            details = {"court": "Court", "hearing_at": days_ago(-30).isoformat()}
        records.append(
            event(f"{a_number}-{suffix}", kind, days_ago(days), who, facility=facility, **details)
        )
    return records


@pytest.fixture
def twin(database_url: str, databases: Databases) -> Iterator[Engine]:
    """A second fresh database of the same kind as `engine`'s."""
    made = make_engine(
        databases.create("sqlite" if database_url.startswith("sqlite") else "postgresql")
    )
    yield made
    made.dispose()


def test_the_status_is_exactly_what_it_would_be_had_the_event_never_been_recorded(
    engine: Engine, twin: Engine
) -> None:
    # One person per event of the history: in `engine` each gets the whole history and
    # then that event is retracted; in `twin` the same history arrives without it.
    people = {suffix: f"40000001{n}" for n, (suffix, *_) in enumerate(HISTORY)}
    for database in (engine, twin):
        load_facilities(database, "F1", "F2", "F3")
    for suffix, a_number in people.items():
        for record in _history(a_number):
            assert ingest(engine, record).rejected == 0
        for record in _history(a_number, leave_out=suffix):
            assert ingest(twin, record).rejected == 0
        cleared = csv_lines(["a_number", "status", "as_of"], [a_number, "cleared", "2026-01-01"])
        for database in (engine, twin):
            ingest_protections(database, cleared, source="screening.csv")
    for suffix, a_number in people.items():
        retract(engine, f"{a_number}-{suffix}")
    for suffix, a_number in people.items():
        assert status_of_person(engine, a_number) == status_of_person(twin, a_number), suffix
        assert public_status(engine, a_number) == public_status(twin, a_number), suffix
    # Sanity: the cases differ from one another (a booking retracted is not a release).
    assert status_of_person(engine, people["c"])[:2] == ("in_custody", "F3")  # type: ignore[index]
    assert status_of_person(engine, people["e"])[:2] == ("released", None)  # type: ignore[index]


def test_the_only_booking_retracted_leaves_no_status_and_nobody_public(engine: Engine) -> None:
    load_facilities(engine, "F1")
    who = person("400000099", "Solo", "Reserva", country="MX")
    ingest(engine, event("only-booking", "booked", days_ago(2), who))
    ingest_protections(
        engine,
        csv_lines(["a_number", "status", "as_of"], ["400000099", "cleared", "2026-01-01"]),
        source="screening.csv",
    )
    assert public_status(engine, "400000099") == [("in_custody", "Facility F1")]
    done = retract(engine, "only-booking")
    assert (done.state_before, done.state, done.facility_code) == ("in_custody", None, None)
    assert status_of_person(engine, "400000099") is None
    assert public_status(engine, "400000099") == []


def test_a_feed_sending_a_retracted_event_again_is_refused_and_it_stays_retracted(
    engine: Engine,
) -> None:
    plant(engine)
    mistaken = event("rel-wrong", "released", days_ago(1), WHO, reason="bond")
    ingest(engine, mistaken)
    retract(engine, "rel-wrong")
    # The very same record again (a feed resending its file), and the id with other content.
    again = ingest(engine, mistaken, source="resend.jsonl")
    changed = ingest(
        engine, {**mistaken, "occurred_at": days_ago(0.5).isoformat()}, source="changed.jsonl"
    )
    for summary in (again, changed):
        assert (summary.applied, summary.duplicates, summary.rejected) == (0, 0, 1)
        [reject] = summary.rejects
        assert reject.field == "event_id" and "'rel-wrong'" in reject.reason
        assert "retracted" in reject.reason and "new event id" in reject.reason
    with engine.connect() as connection:
        kept = connection.execute(
            select(ingest_rejects.c.field, ingest_rejects.c.reason).order_by(ingest_rejects.c.id)
        ).all()
        retracted = connection.execute(
            select(custody_events.c.retracted_at).where(custody_events.c.event_id == "rel-wrong")
        ).scalar_one()
    assert [r.field for r in kept[-2:]] == ["event_id", "event_id"]
    assert retracted == NOW
    assert status_of_person(engine, PUBLIC.a_number)[:2] == ("in_custody", "F1")  # type: ignore[index]
    assert public_status(engine, PUBLIC.a_number) == [("in_custody", "Facility F1")]


def _counts(engine: Engine) -> tuple[int, int]:
    with engine.connect() as connection:
        return (
            connection.execute(select(func.count()).select_from(audit_log)).scalar_one(),
            connection.execute(
                select(func.count())
                .select_from(custody_events)
                .where(custody_events.c.retracted_at.is_not(None))
            ).scalar_one(),
        )


@pytest.mark.parametrize(
    ("event_id", "reason", "kind", "field", "words"),
    [
        (
            "no-such-event",
            "typo",
            NotFoundError,
            None,
            "no custody event has the event id 'no-such-event'",
        ),
        ("", "typo", FieldError, "event_id", "is required"),
        ("  ", "typo", FieldError, "event_id", "is required"),
        ("rel\x00wrong", "typo", FieldError, "event_id", "control characters"),
        ("x" * 201, "typo", FieldError, "event_id", "longer than 200"),
        ("rel-wrong", "", FieldError, "reason", "is required"),
        ("rel-wrong", " \n\t ", FieldError, "reason", "is required"),
        ("rel-wrong", "wrong\x00person", FieldError, "reason", "control characters"),
        ("rel-wrong", "x" * 2001, FieldError, "reason", "longer than 2000"),
    ],
)
def test_refusals_name_what_they_refuse_and_change_nothing(
    engine: Engine,
    event_id: str,
    reason: str,
    kind: type[Exception],
    field: str | None,
    words: str,
) -> None:
    plant(engine)
    ingest(engine, event("rel-wrong", "released", days_ago(1), WHO, reason="bond"))
    before = _counts(engine)
    with pytest.raises(kind) as refused:
        retract(engine, event_id, reason)
    error = refused.value
    if field is not None:
        assert isinstance(error, FieldError) and error.field == field and words in error.reason
        assert status_of(error) == 422
    else:
        assert words in str(error) and status_of(error) == 404
        assert exit_code(error) == 2  # type: ignore[arg-type]
    assert _counts(engine) == before
    assert public_status(engine, PUBLIC.a_number) == [("released", "Facility F1")]


def test_retracting_twice_is_refused_clearly_and_changes_nothing(engine: Engine) -> None:
    plant(engine)
    ingest(engine, event("rel-wrong", "released", days_ago(1), WHO, reason="bond"))
    retract(engine, "rel-wrong", "first")
    before = _counts(engine)
    with pytest.raises(RetractionError) as refused, engine.begin() as connection:
        event_actions.retract(
            connection, Actor("someone-else"), "rel-wrong", "again", NOW + timedelta(hours=1)
        )
    message = str(refused.value)
    assert "'rel-wrong' was already retracted" in message and SUPERVISOR.name in message
    assert isinstance(refused.value, ConflictError)
    assert status_of(refused.value) == 409 and exit_code(refused.value) == 1
    assert _counts(engine) == before
    with engine.connect() as connection:
        view = staff_view(connection, PUBLIC.a_number)
    assert view is not None
    [kept] = [e for e in view.history if e.event_id == "rel-wrong"]
    assert (kept.retracted_by, kept.retraction_reason) == (SUPERVISOR.name, "first")


def test_an_unscreened_persons_event_retracted_stays_invisible(engine: Engine) -> None:
    plant(engine)
    who = person(
        UNSCREENED.a_number,
        UNSCREENED.given,
        UNSCREENED.family,
        born=UNSCREENED.born,
        country=UNSCREENED.country,
    )
    assert ingest(engine, event("moved-wrong", "transferred", days_ago(1), who)).applied == 1
    done = retract(engine, "moved-wrong")
    assert done.state == "in_custody" and done.corrections == 0
    with engine.connect() as connection:
        assert lookup.by_a_number(connection, UNSCREENED.a_number, UNSCREENED.country) == []


def test_a_held_status_that_was_the_retracted_event_is_derived_again(engine: Engine) -> None:
    """A batch held for review keeps the status from before it public. Where that status
    was the retracted event's, the public sees the one derived without it, and discarding
    the batch does not bring the event back."""
    plant(engine)
    load_facilities(engine, "F2")
    ingest(engine, event("rel-wrong", "released", days_ago(1), WHO, reason="bond"))
    # Dated an hour ahead: the batch is held, and the public keeps seeing the release.
    held = ingest(engine, event("ahead", "transferred", NOW + timedelta(hours=1), WHO, "F2"))
    assert held.hold_id is not None
    assert public_status(engine, PUBLIC.a_number) == [("released", "Facility F1")]

    retract(engine, "rel-wrong")
    assert public_status(engine, PUBLIC.a_number) == [("in_custody", "Facility F1")]
    with engine.begin() as connection:
        holds.discard(connection, held.hold_id, actor="sam", now=NOW)
    assert status_of_person(engine, PUBLIC.a_number)[:3] == (  # type: ignore[index]
        "in_custody",
        "F1",
        f"book-{PUBLIC.a_number}",
    )
    assert public_status(engine, PUBLIC.a_number) == [("in_custody", "Facility F1")]


def test_a_discarded_event_cannot_be_retracted(engine: Engine) -> None:
    plant(engine)
    held = ingest(engine, event("ahead", "released", NOW + timedelta(hours=1), WHO, reason="bond"))
    assert held.hold_id is not None
    with engine.begin() as connection:
        holds.discard(connection, held.hold_id, actor="sam", now=NOW)
    with pytest.raises(RetractionError, match="discarded with its held batch"):
        retract(engine, "ahead")

"""Protection lists: protection wins at once, whether it arrives before or after custody events,
and a feed can never unprotect."""

from sqlalchemy import Engine, select

from safevine.ingest.events import ingest_events
from safevine.ingest.protections import ingest_protections
from safevine.store.public.views import public_persons
from safevine.store.records.person_view import staff_view
from tests.builders import NOW, csv_lines, days_ago, event, jsonl, load_facilities, person

HEADER = ["a_number", "status", "as_of", "source"]
TODAY = NOW.date().isoformat()


def protection_of(engine: Engine, a_number: str) -> str | None:
    with engine.connect() as connection:
        view = staff_view(connection, a_number)
    return view.protection if view else None


def public(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return set(connection.execute(select(public_persons.c.a_number)).scalars())


def book(engine: Engine, a_number: str, event_id: str) -> None:
    ingest_events(
        engine,
        jsonl(event(event_id, "booked", days_ago(2), person(a_number))),
        source="feed",
        fmt="jsonl",
    )


def test_a_list_after_the_events_hides_the_person_at_once(engine: Engine) -> None:
    load_facilities(engine, "F1")
    book(engine, "100000001", "e1")
    ingest_protections(
        engine, csv_lines(HEADER, ["100000001", "cleared", TODAY, "screening"]), source="screen.csv"
    )
    assert public(engine) == {"100000001"}
    summary = ingest_protections(
        engine, csv_lines(HEADER, ["A-100-000-001", "protected", TODAY, "USCIS"]), source="p.csv"
    )
    assert summary.applied == 1
    assert public(engine) == set()
    with engine.connect() as connection:
        view = staff_view(connection, "100000001")
    assert view is not None
    assert [(c.from_status, c.to_status, c.source) for c in view.protection_history] == [
        ("unscreened", "cleared", "screening"),
        ("cleared", "protected", "USCIS"),
    ]


def test_a_list_before_the_events_protects_the_person_when_they_arrive(engine: Engine) -> None:
    load_facilities(engine, "F1")
    summary = ingest_protections(
        engine, csv_lines(HEADER, ["100000001", "protected", TODAY, ""]), source="p.csv"
    )
    assert summary.applied == 1
    book(engine, "100000001", "e1")
    assert protection_of(engine, "100000001") == "protected"
    assert public(engine) == set()
    with engine.connect() as connection:
        view = staff_view(connection, "100000001")
    assert view is not None and view.given_name == "Ana" and view.state == "in_custody"


def test_a_feed_never_clears_a_protected_person(engine: Engine) -> None:
    load_facilities(engine, "F1")
    book(engine, "100000001", "e1")
    ingest_protections(
        engine, csv_lines(HEADER, ["100000001", "protected", TODAY, ""]), source="p.csv"
    )
    summary = ingest_protections(
        engine, csv_lines(HEADER, ["100000001", "cleared", TODAY, ""]), source="c.csv"
    )
    assert (summary.applied, summary.rejected) == (0, 1)
    assert summary.rejects[0].field == "status"
    assert "safevine clear" in summary.rejects[0].reason
    assert protection_of(engine, "100000001") == "protected"
    # Nor does an event that says the person is cleared.
    who = person("100000001", protection="cleared")
    ingest_events(
        engine, jsonl(event("e2", "transferred", days_ago(1), who)), source="f", fmt="jsonl"
    )
    assert protection_of(engine, "100000001") == "protected"


def test_an_unreadable_status_fails_closed(engine: Engine) -> None:
    load_facilities(engine, "F1")
    book(engine, "100000001", "e1")
    ingest_protections(
        engine, csv_lines(HEADER, ["100000001", "cleared", TODAY, ""]), source="c.csv"
    )
    summary = ingest_protections(
        engine,
        csv_lines(
            HEADER,
            ["100000001", "protect", TODAY, ""],
            ["1", "protected", TODAY, ""],
            ["100000002", "protected", "soon", ""],
        ),
        source="typo.csv",
    )
    assert summary.rejected == 3
    assert [(r.line, r.field) for r in summary.rejects] == [
        (2, "status"),
        (3, "a_number"),
        (4, "as_of"),
    ]
    assert protection_of(engine, "100000001") == "protected"
    assert protection_of(engine, "100000002") == "protected"


def test_the_same_list_twice_changes_nothing(engine: Engine) -> None:
    rows = csv_lines(
        HEADER,
        ["100000001", "protected", TODAY, ""],
        ["100000002", "cleared", "2026-11-01T09:00:00-05:00", ""],
    )
    first = ingest_protections(engine, rows, source="p.csv")
    again = ingest_protections(engine, rows, source="p.csv")
    assert (first.applied, first.duplicates) == (2, 0)
    assert (again.applied, again.duplicates, again.rejected) == (0, 2, 0)


def test_a_plain_date_outside_the_range_of_moments_is_a_reject(engine: Engine) -> None:
    lines = csv_lines(
        HEADER,
        ["200000091", "protected", "9999-12-31", "screening"],
        ["200000092", "cleared", "1899-12-31", "screening"],
        ["200000093", "cleared", "2026-01-15", "screening"],
    )
    summary = ingest_protections(engine, lines, source="dates.csv")
    assert [(r.line, r.field) for r in summary.rejects] == [(2, "as_of"), (3, "as_of")]
    # Fail closed: the rejected row that says `protected` still protects.
    assert protection_of(engine, "200000091") == "protected"
    assert protection_of(engine, "200000092") is None
    assert protection_of(engine, "200000093") == "cleared"

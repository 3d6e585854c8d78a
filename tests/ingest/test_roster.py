"""Roster snapshots: the diff over several snapshots, staleness, and no false releases."""

from datetime import datetime, timedelta

from sqlalchemy import Engine, select

from safevine.ingest.events import ingest_events
from safevine.ingest.roster import ingest_roster
from safevine.store.records.person_view import staff_view
from safevine.store.schema import ingest_rejects
from tests.builders import NOW, ROSTER_HEADER, csv_lines, event, jsonl, load_facilities, person

HEADER = ROSTER_HEADER
NAMES = {
    "1": ("Ana", "Pérez"),
    "2": ("Luis", "García"),
    "3": ("Rosa", "Díaz"),
    "4": ("Omar", "Cruz"),
    "5": ("Iris", "Vega"),
}


def snapshot(at: datetime, *placements: tuple[str, str]) -> list[bytes]:
    """Rows of (facility, person number); person n has A-number 10000000n."""
    rows = [
        [at.isoformat(), facility, f"10000000{n}", *NAMES[n], "1990-05-01", "MX"]
        for facility, n in placements
    ]
    return csv_lines(HEADER, *rows)


def place(engine: Engine, n: str) -> tuple[str | None, str | None, list[str]]:
    with engine.connect() as connection:
        view = staff_view(connection, f"10000000{n}")
    assert view is not None
    return view.state, view.facility_code, [e.kind for e in view.history]


T1, T2, T3 = NOW - timedelta(days=3), NOW - timedelta(days=2), NOW - timedelta(days=1)


def test_a_series_of_snapshots_derives_bookings_transfers_and_departures(engine: Engine) -> None:
    load_facilities(engine, "F1", "F2")
    s1 = ingest_roster(
        engine, snapshot(T1, ("F1", "1"), ("F1", "2"), ("F1", "3"), ("F2", "4")), source="s1.csv"
    )
    assert (s1.applied, s1.derived_events, s1.rejected, s1.status) == (4, 4, 0, "completed")

    s2 = ingest_roster(
        engine,
        snapshot(T2, ("F1", "1"), ("F1", "2"), ("F2", "3"), ("F2", "4"), ("F2", "5")),
        source="s2.csv",
    )
    assert s2.derived_events == 2  # 3 transferred to F2, 5 booked
    assert place(engine, "3") == ("in_custody", "F2", ["transferred", "booked"])
    assert place(engine, "5") == ("in_custody", "F2", ["booked"])

    # A snapshot of F1 alone: 2 has left F1; F2 is not covered, so 3, 4, 5 stay.
    s3 = ingest_roster(engine, snapshot(T3, ("F1", "1")), source="s3.csv")
    assert s3.derived_events == 1
    state, facility, kinds = place(engine, "2")
    assert (state, facility, kinds[0]) == ("released", "F1", "released")
    with engine.connect() as connection:
        view = staff_view(connection, "100000002")
    assert view is not None and view.history[0].details == {"reason": "unknown"}
    assert [place(engine, n)[0] for n in "1345"] == ["in_custody"] * 4


def test_an_older_snapshot_is_refused_and_changes_nothing(engine: Engine) -> None:
    load_facilities(engine, "F1")
    ingest_roster(engine, snapshot(T2, ("F1", "1"), ("F1", "2")), source="new.csv")
    old = ingest_roster(engine, snapshot(T1, ("F1", "1")), source="old.csv")
    assert old.status == "refused" and old.derived_events == 0
    assert "older than the one applied" in old.notes[0]
    assert place(engine, "2")[0] == "in_custody"


def test_a_refused_snapshot_still_keeps_every_reject_it_counts(engine: Engine) -> None:
    """A row listing someone again is a reject even in a snapshot refused as stale: it
    was counted but, rolled back with the refusal, never stored."""
    load_facilities(engine, "F1")
    ingest_roster(engine, snapshot(T2, ("F1", "1"), ("F1", "2")), source="new.csv")
    old = ingest_roster(engine, snapshot(T1, ("F1", "1"), ("F1", "1")), source="old.csv")
    assert (old.status, old.total, old.applied, old.rejected) == ("refused", 2, 0, 1)
    assert [(r.line, r.field) for r in old.rejects] == [(3, "a_number")]
    with engine.connect() as connection:
        stored = connection.execute(
            select(ingest_rejects.c.line, ingest_rejects.c.field).where(
                ingest_rejects.c.batch_id == old.batch_id
            )
        ).all()
    assert [tuple(r) for r in stored] == [(3, "a_number")]


def test_the_same_snapshot_twice_is_a_no_op(engine: Engine) -> None:
    load_facilities(engine, "F1")
    rows = snapshot(T1, ("F1", "1"), ("F1", "2"))
    ingest_roster(engine, rows, source="s.csv")
    again = ingest_roster(engine, rows, source="s.csv")
    assert (again.status, again.applied, again.duplicates, again.derived_events) == (
        "completed",
        0,
        2,
        0,
    )
    different = ingest_roster(engine, snapshot(T1, ("F1", "1")), source="s-edited.csv")
    assert different.status == "refused"
    assert place(engine, "2")[0] == "in_custody"


def test_a_bad_row_never_releases_anyone(engine: Engine) -> None:
    load_facilities(engine, "F1", "F2")
    ingest_roster(
        engine, snapshot(T1, ("F1", "1"), ("F1", "2"), ("F2", "3"), ("F2", "4")), source="s1.csv"
    )
    rows = csv_lines(
        HEADER,
        [T2.isoformat(), "F1", "100000001", "Ana", "Pérez", "1990-05-01", "MX"],
        [T2.isoformat(), "F1", "100000002", "Luis", "García", "1990-13-45", "MX"],  # bad date
        [T2.isoformat(), "F2", "100000003", "Rosa", "Díaz", "1990-05-01", "MX"],
        [T2.isoformat(), "F2", "not-a-number", "Omar", "Cruz", "1990-05-01", "MX"],
        [T2.isoformat(), "F1", "100000001", "Ana", "Pérez", "1990-05-01", "MX"],  # listed twice
    )
    summary = ingest_roster(engine, rows, source="s2.csv")
    assert summary.rejected == 3
    assert [(r.line, r.field) for r in summary.rejects] == [
        (3, "date_of_birth"),
        (5, "a_number"),
        (6, "a_number"),
    ]
    # 2's row was bad but readable: 2 is still listed. 4's row had no readable A-number,
    # so nobody leaves F2 on this snapshot's word.
    assert [place(engine, n)[0] for n in "1234"] == ["in_custody"] * 4
    assert any("F2: departures withheld" in note for note in summary.notes)


def test_an_emptied_facility_can_be_declared(engine: Engine) -> None:
    load_facilities(engine, "F1")
    ingest_roster(engine, snapshot(T1, ("F1", "1"), ("F1", "2")), source="s1.csv")
    empty = ingest_roster(
        engine, csv_lines(HEADER), source="empty.csv", declared=["f1"], snapshot_at=T2
    )
    assert empty.derived_events == 2
    assert [place(engine, n)[0] for n in "12"] == ["released", "released"]


def test_scope_all_covers_facilities_missing_from_the_file(engine: Engine) -> None:
    load_facilities(engine, "F1", "F2")
    ingest_roster(engine, snapshot(T1, ("F1", "1"), ("F2", "2")), source="s1.csv")
    summary = ingest_roster(engine, snapshot(T2, ("F1", "1")), source="s2.csv", scope="all")
    assert summary.derived_events == 1
    assert place(engine, "2")[0] == "released"


def test_a_snapshot_does_not_override_newer_events(engine: Engine) -> None:
    load_facilities(engine, "F1")
    who = person("100000001", "Ana", "Pérez")
    ingest_events(
        engine,
        jsonl(event("x1", "booked", T1, who), event("x2", "released", T3, who, reason="bond")),
        source="feed",
        fmt="jsonl",
    )
    summary = ingest_roster(engine, snapshot(T2, ("F1", "1")), source="s.csv")
    assert summary.derived_events == 0
    assert place(engine, "1") == ("released", "F1", ["released", "booked"])

"""Roster sweeps that stage only what may change: the people who stayed are only marked.

A row listing someone in custody at the facility that lists them is counted and marked,
and staged only for the facts it tells that the record lacks or contradicts. These tests
pin what that must not change: repeats name their first line wherever it was, a repeat
is caught whatever its first row was, a snapshot applied over a held one is judged on the
state the hold's resolution leaves, a fingerprint from an earlier version is never
mistaken for this one's, and the rows of people who stay still tell their records what
an event's facts would, once and only when the snapshot applies.
"""

from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from sqlalchemy import Engine, select, update

from safevine.domain.batch_thresholds import Thresholds
from safevine.ingest import roster
from safevine.ingest.protections import ingest_protections
from safevine.ingest.roster import ingest_roster
from safevine.ingest.summary import IngestSummary
from safevine.store.public import lookup
from safevine.store.records.person_view import staff_view
from safevine.store.schema import persons, roster_snapshots
from tests.builders import NOW, ROSTER_HEADER, csv_lines, load_facilities

HEADER = ROSTER_HEADER
T1, T2, T3 = NOW - timedelta(days=3), NOW - timedelta(days=2), NOW - timedelta(days=1)


def a(n: int) -> str:
    return f"7{n:08d}"


def row(at: object, facility: str, n: int, born: str = "1985-02-03") -> list[str]:
    return [str(at), facility, a(n), "Nombre", f"Persona{n}", born, "MX"]


def rows(at: object, placements: dict[str, range | list[int]]) -> list[list[str]]:
    return [row(at, f, n) for f, people in placements.items() for n in people]


def where(engine: Engine, n: int) -> tuple[str | None, str | None]:
    with engine.connect() as connection:
        view = staff_view(connection, a(n))
    assert view is not None
    return view.state, view.facility_code


def test_a_repeat_names_its_first_line_whether_that_row_was_staged_or_not(
    engine: Engine,
) -> None:
    load_facilities(engine, "F1", "F2")
    at1, at2 = T1.isoformat(), T2.isoformat()
    ingest_roster(engine, csv_lines(HEADER, *rows(at1, {"F1": range(10)})), source="s1.csv")
    summary = ingest_roster(
        engine,
        csv_lines(
            HEADER,
            row(at2, "F1", 0),  # line 2: stays at F1, not staged
            row(at2, "F2", 1),  # line 3: moves to F2, staged
            *rows(at2, {"F1": range(2, 10)}),  # lines 4-11
            row(at2, "F1", 0),  # line 12: repeat of line 2
            row(at2, "F1", 1),  # line 13: repeat of line 3 (at 1's facility until now)
            row(at2, "F1", 50),  # line 14: a newcomer
            row(at2, "F2", 50),  # line 15: repeat of line 14
        ),
        source="s2.csv",
    )
    assert [(r.line, r.reason) for r in summary.rejects] == [
        (12, "is listed twice in this snapshot (first on line 2)"),
        (13, "is listed twice in this snapshot (first on line 3)"),
        (15, "is listed twice in this snapshot (first on line 14)"),
    ]
    assert (summary.applied, summary.derived_events) == (11, 2)
    assert where(engine, 0) == ("in_custody", "F1")
    assert where(engine, 1) == ("in_custody", "F2")
    assert where(engine, 50) == ("in_custody", "F1")


def test_the_first_row_of_a_person_wins_where_it_lists_them(engine: Engine) -> None:
    load_facilities(engine, "F1", "F2")
    at1, at2 = T1.isoformat(), T2.isoformat()
    ingest_roster(engine, csv_lines(HEADER, *rows(at1, {"F1": range(10)})), source="s1.csv")
    # 0 is listed where they are first, then elsewhere: they stay. 1 the other way round.
    ingest_roster(
        engine,
        csv_lines(
            HEADER,
            row(at2, "F1", 0),
            row(at2, "F2", 1),
            *rows(at2, {"F1": range(2, 10)}),
            row(at2, "F2", 0),
            row(at2, "F1", 1),
        ),
        source="s2.csv",
    )
    assert where(engine, 0) == ("in_custody", "F1")
    assert where(engine, 1) == ("in_custody", "F2")


def test_a_rejected_row_keeps_its_person_and_counts_where_it_lists_them(engine: Engine) -> None:
    load_facilities(engine, "F1", "F2")
    at1, at2 = T1.isoformat(), T2.isoformat()
    ingest_roster(engine, csv_lines(HEADER, *rows(at1, {"F1": range(10)})), source="s1.csv")
    # Everyone at F1 has a bad date of birth, so every row is rejected: nobody leaves,
    # and the snapshot is not held (no one counts as leaving F1).
    summary = ingest_roster(
        engine,
        csv_lines(HEADER, *(row(at2, "F1", n, born="1985-13-45") for n in range(10))),
        source="s2.csv",
        thresholds=Thresholds(),
    )
    assert (summary.rejected, summary.derived_events, summary.status) == (10, 0, "completed")
    assert all(where(engine, n) == ("in_custody", "F1") for n in range(10))


# 0-19 of 40 people at F1 moved to F2 by a snapshot held for review.
MOVED = {"F1": range(20, 40), "F2": range(20)}


def _hold_a_move(engine: Engine) -> IngestSummary:
    load_facilities(engine, "F1", "F2")
    ingest_roster(
        engine, csv_lines(HEADER, *rows(T1.isoformat(), {"F1": range(40)})), source="s1.csv"
    )
    return ingest_roster(
        engine,
        csv_lines(HEADER, *rows(T2.isoformat(), MOVED)),
        source="s2.csv",
        thresholds=Thresholds(),
    )


def test_a_snapshot_over_a_held_one_is_applied_to_the_state_its_resolution_leaves(
    engine: Engine,
) -> None:
    held = _hold_a_move(engine)
    at3 = T3.isoformat()
    assert held.status == "held"
    assert where(engine, 0) == ("in_custody", "F2")
    # The same move again, later: when it is read, 0-19 are at F2, as it lists them; but
    # it resolves the held one, which moves them back to F1, so it moves them again.
    again = ingest_roster(
        engine, csv_lines(HEADER, *rows(at3, MOVED)), source="s3.csv", thresholds=Thresholds()
    )
    assert any(f"hold {held.hold_id} resolved" in note for note in again.notes)
    assert again.derived_events == 20
    assert again.status == "held"  # judged against the state from before the held one
    assert all(where(engine, n) == ("in_custody", "F2") for n in range(20))
    assert all(where(engine, n) == ("in_custody", "F1") for n in range(20, 40))


def test_a_fingerprint_from_an_earlier_version_is_not_taken_for_the_same_snapshot(
    engine: Engine,
) -> None:
    load_facilities(engine, "F1")
    lines = csv_lines(HEADER, *rows(T1.isoformat(), {"F1": range(3)}))
    ingest_roster(engine, lines, source="s1.csv")
    with engine.begin() as connection:
        connection.execute(update(roster_snapshots).values(content_hash="0" * 64))
    again = ingest_roster(engine, lines, source="s1.csv")
    assert again.status == "refused"
    assert "earlier version" in again.notes[0]


def test_the_same_snapshot_sent_again_is_recognised_and_a_changed_one_refused(
    engine: Engine,
) -> None:
    load_facilities(engine, "F1", "F2")
    at = T1.isoformat()
    first = rows(at, {"F1": range(5), "F2": range(5, 8)})
    ingest_roster(engine, csv_lines(HEADER, *first), source="s1.csv")
    # The same people in another order: the same snapshot.
    again = ingest_roster(engine, csv_lines(HEADER, *reversed(first)), source="s1.csv")
    assert (again.status, again.applied, again.duplicates) == ("completed", 0, 8)
    # One person listed at the other facility instead: not the same.
    swapped = rows(at, {"F1": [0, 1, 2, 3, 5], "F2": [4, 6, 7]})
    changed = ingest_roster(engine, csv_lines(HEADER, *swapped), source="s1b.csv")
    assert changed.status == "refused"
    assert where(engine, 4) == ("in_custody", "F1")


def test_a_source_that_fails_while_read_stops_the_run_and_applies_nothing(
    engine: Engine,
) -> None:
    load_facilities(engine, "F1")
    good = csv_lines(HEADER, *rows(T1.isoformat(), {"F1": range(30_000)}))

    def failing() -> Iterator[bytes]:
        yield from good[:25_000]
        raise OSError("the connection was reset")

    with pytest.raises(OSError, match="reset"):
        ingest_roster(engine, failing(), source="broken.csv")
    # Nothing was applied: the next snapshot starts from nothing.
    with engine.connect() as connection:
        assert staff_view(connection, a(0)) is None


def test_reading_everyone_in_custody_releases_only_at_the_facilities_in_scope(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As for a national sweep: who left is found by reading everyone in custody.
    monkeypatch.setattr(roster, "WHOLE_TABLE_FACILITIES", 0)
    load_facilities(engine, "F1", "F2")
    at1, at2 = T1.isoformat(), T2.isoformat()
    ingest_roster(engine, csv_lines(HEADER, *rows(at1, {"F1": [1, 2], "F2": [3]})), source="1")
    summary = ingest_roster(engine, csv_lines(HEADER, row(at2, "F1", 1)), source="2")
    assert summary.derived_events == 1
    assert where(engine, 2) == ("released", "F1")
    assert where(engine, 3) == ("in_custody", "F2")  # F2 was not in this snapshot


def _names_and_birth(engine: Engine, n: int) -> tuple[list[tuple[str, str]], date | None]:
    with engine.connect() as connection:
        view = staff_view(connection, a(n))
    assert view is not None
    return [(view.given_name or "", view.family_name or ""), *view.aliases], view.date_of_birth


def test_a_row_of_someone_who_stays_tells_their_record_what_it_lacks(engine: Engine) -> None:
    load_facilities(engine, "F1")
    at1, at2 = T1.isoformat(), T2.isoformat()
    first = [row(at1, "F1", 0, born=""), *rows(at1, {"F1": range(1, 5)})]
    ingest_roster(engine, csv_lines(HEADER, *first), source="s1.csv")
    updated_at = _updated_at(engine)
    summary = ingest_roster(
        engine,
        csv_lines(
            HEADER,
            row(at2, "F1", 0),  # line 2: the date of birth, lacking until now
            [at2, "F1", a(1), "Nombre José", "Persona1", "1985-02-03", "MX"],  # another name
            row(at2, "F1", 2, born="1986-07-08"),  # line 4: contradicts the record
            [at2, "F1", a(3), "NOMBRE", "PERSONA3", "1985-02-03", "MX"],  # the same name
            [at2, "F1", a(4), "", "", "", ""],  # says nothing but the A-number
        ),
        source="s2.csv",
        thresholds=Thresholds(),
    )
    assert [(r.line, r.field) for r in summary.rejects] == [(4, "date_of_birth")]
    assert "differs from the date of birth on record" in summary.rejects[0].reason
    assert (summary.applied, summary.rejected, summary.derived_events) == (4, 1, 0)
    assert summary.status == "completed"
    assert _names_and_birth(engine, 0) == ([("Nombre", "Persona0")], date(1985, 2, 3))
    assert _names_and_birth(engine, 1) == (
        [("Nombre", "Persona1"), ("Nombre José", "Persona1")],
        date(1985, 2, 3),
    )
    assert _names_and_birth(engine, 2) == ([("Nombre", "Persona2")], date(1985, 2, 3))
    assert _names_and_birth(engine, 3) == ([("Nombre", "Persona3")], date(1985, 2, 3))
    # Everyone stays where they were, the rejected row's person too; only the records
    # that learnt something were written.
    assert all(where(engine, n) == ("in_custody", "F1") for n in range(5))
    after = _updated_at(engine)
    assert {n for n in range(5) if after[a(n)] != updated_at[a(n)]} == {0}


def test_the_same_snapshot_sent_again_tells_nothing_twice(engine: Engine) -> None:
    load_facilities(engine, "F1")
    at1, at2 = T1.isoformat(), T2.isoformat()
    ingest_roster(engine, csv_lines(HEADER, *rows(at1, {"F1": range(3)})), source="s1.csv")
    renamed = [[at2, "F1", a(n), "Otro", f"Persona{n}", "1985-02-03", "MX"] for n in range(3)]
    ingest_roster(engine, csv_lines(HEADER, *renamed), source="s2.csv")
    later = [[T3.isoformat(), *r[1:]] for r in renamed]
    again = ingest_roster(engine, csv_lines(HEADER, *later), source="s3.csv")
    assert (again.applied, again.rejected, again.derived_events) == (3, 0, 0)
    assert _names_and_birth(engine, 1)[0] == [("Nombre", "Persona1"), ("Otro", "Persona1")]


def _updated_at(engine: Engine) -> dict[str, object]:
    with engine.connect() as connection:
        return dict(connection.execute(select(persons.c.a_number, persons.c.updated_at)).all())


def test_a_new_name_of_someone_who_stays_finds_them_only_if_public(engine: Engine) -> None:
    load_facilities(engine, "F1")
    ingest_roster(engine, csv_lines(HEADER, *rows(T1.isoformat(), {"F1": range(2)})), source="s1")
    screening = [[a(0), "cleared", NOW.date().isoformat()], [a(1), "protected", "2026-01-01"]]
    ingest_protections(engine, csv_lines(["a_number", "status", "as_of"], *screening), source="p")
    renamed = [[T2.isoformat(), "F1", a(n), "Nombre", f"Renombrada{n}", "", ""] for n in range(2)]
    ingest_roster(engine, csv_lines(HEADER, *renamed), source="s2.csv")
    with engine.connect() as connection:
        found = [lookup.by_name(connection, "nombre", f"renombrada{n}", "MX") for n in range(2)]
    assert [[(p.given_name, p.family_name) for p in hits] for hits in found] == [
        [("Nombre", "Persona0")],
        [],
    ]


def test_a_refused_snapshot_tells_the_record_nothing(engine: Engine) -> None:
    load_facilities(engine, "F1", "F2")
    ingest_roster(engine, csv_lines(HEADER, row(T1.isoformat(), "F1", 0, born="")), source="1")
    ingest_roster(engine, csv_lines(HEADER, row(T3.isoformat(), "F2", 1)), source="2.csv")
    before = [_names_and_birth(engine, n) for n in range(2)]
    # F1's rows come first and tell something new, but the snapshot is older than the one
    # applied for F2, so the whole snapshot is refused.
    at = T2.isoformat()
    older = [
        row(at, "F1", 0),
        [at, "F2", a(1), "Otro", "Persona1", "1985-02-03", "MX"],
    ]
    refused = ingest_roster(engine, csv_lines(HEADER, *older), source="3.csv")
    assert refused.status == "refused"
    assert [_names_and_birth(engine, n) for n in range(2)] == before
    assert before[0][1] is None


def test_rows_that_tell_facts_do_not_count_twice_as_staying(engine: Engine) -> None:
    load_facilities(engine, "F1")
    ingest_roster(engine, csv_lines(HEADER, *rows(T1.isoformat(), {"F1": range(20)})), source="1")
    # 6 of 20 leave (over the 20% share, and the 5, that hold a snapshot), and each of the
    # 14 who stay is listed under another name, so each of their rows is staged for its facts.
    renamed = [[T2.isoformat(), "F1", a(n), "Otro", f"Persona{n}", "", ""] for n in range(14)]
    held = ingest_roster(engine, csv_lines(HEADER, *renamed), source="2", thresholds=Thresholds())
    assert held.status == "held"
    assert "6 of the 20 people in custody at F1" in held.notes[-1]
    assert _names_and_birth(engine, 13)[0] == [("Nombre", "Persona13"), ("Otro", "Persona13")]


def test_the_facts_of_someone_a_resolved_hold_puts_back_where_listed_are_told(
    engine: Engine,
) -> None:
    held = _hold_a_move(engine)
    at3 = T3.isoformat()
    assert held.status == "held" and where(engine, 0) == ("in_custody", "F2")
    # Everyone back at F1, where resolving the held snapshot puts 0-19 again, so nothing is
    # derived for them; their rows still tell their records another name.
    back = [[at3, "F1", a(n), "Otro", f"Persona{n}", "1985-02-03", "MX"] for n in range(40)]
    again = ingest_roster(engine, csv_lines(HEADER, *back), source="s3.csv", scope="all")
    assert any(f"hold {held.hold_id} resolved" in note for note in again.notes)
    assert (again.derived_events, again.rejected) == (0, 0)
    for n in (0, 19, 20, 39):
        assert where(engine, n) == ("in_custody", "F1")
        assert _names_and_birth(engine, n)[0] == [
            ("Nombre", f"Persona{n}"),
            ("Otro", f"Persona{n}"),
        ]

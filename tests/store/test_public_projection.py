"""The public views apply the publication rule in the database; they must agree with the
domain rule at every boundary, on both databases."""

from datetime import UTC, date, datetime, time, timedelta
from time import sleep

import pytest
from sqlalchemy import Engine, select

from safevine.domain.event_kinds import CustodyState
from safevine.domain.names import fold_name
from safevine.domain.protection import Protection
from safevine.domain.publication import is_public
from safevine.ingest.events import ingest_events
from safevine.ingest.protections import ingest_protections
from safevine.store import migrate
from safevine.store.public import lookup
from safevine.store.public.views import public_persons
from safevine.store.records.persons import person_ids_by_a_number
from safevine.store.records.protection import clear
from safevine.store.schema import custody_status, persons
from tests.builders import csv_lines, days_ago, event, jsonl, load_facilities, person


def a_day_that_lasts(margin: timedelta = timedelta(minutes=1)) -> date:
    """Today in UTC, after waiting out midnight if it is nearer than `margin`: the 17- and
    18-year-old cases sit on a day's edge, and the views read the day when they are queried,
    so a test that crossed midnight would judge them on another day than it built them for."""
    now = datetime.now(UTC)
    midnight = datetime.combine(now.date() + timedelta(days=1), time(), UTC)
    if midnight - now < margin:
        sleep((midnight - now).total_seconds() + 1)
    return datetime.now(UTC).date()


def years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a year without one
        return day.replace(year=day.year - years, day=28)


Case = tuple[date | None, float | None, str | None, bool]


def cases(today: date) -> dict[str, Case]:
    """a_number: (date of birth, days since release or None for in custody, protection to
    apply, public?)"""
    return {
        "100000001": (date(1990, 1, 1), None, "cleared", True),
        "100000002": (date(1990, 1, 1), None, None, False),  # never screened
        "100000003": (date(1990, 1, 1), None, "protected", False),
        "100000004": (years_before(today + timedelta(days=1), 18), None, "cleared", False),  # 17
        "100000005": (years_before(today, 18), None, "cleared", True),  # 18 today
        "100000006": (None, None, "cleared", False),  # age unknown
        "100000007": (date(1990, 1, 1), 59, "cleared", True),
        "100000008": (date(1990, 1, 1), 60, "cleared", False),
        "100000009": (date(1990, 1, 1), 61, "cleared", False),
    }


def _load(engine: Engine) -> dict[str, Case]:
    """Loads the cases for today and returns them."""
    today = a_day_that_lasts()
    loaded = cases(today)
    load_facilities(engine, "F1")
    records = []
    for a_number, (born, released_days, _, _) in loaded.items():
        who = person(a_number, "Ana", f"Case{a_number[-1]}", born=born)
        records.append(event(f"b-{a_number}", "booked", days_ago(200), who))
        if released_days is not None:
            records.append(
                event(f"r-{a_number}", "released", days_ago(released_days), who, reason="bond")
            )
    assert ingest_events(engine, jsonl(*records), source="cases.jsonl", fmt="jsonl").rejected == 0
    rows = [[a, p, today.isoformat(), "screening"] for a, (_, _, p, _) in loaded.items() if p]
    summary = ingest_protections(
        engine, csv_lines(["a_number", "status", "as_of", "source"], *rows), source="p.csv"
    )
    assert summary.rejected == 0
    return loaded


def _visible(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return set(connection.execute(select(public_persons.c.a_number)).scalars())


def test_view_applies_the_rule_at_every_boundary(engine: Engine) -> None:
    expected = {a for a, (_, _, _, public) in _load(engine).items() if public}
    assert _visible(engine) == expected


def _searched(engine: Engine, loaded: dict[str, Case]) -> set[str]:
    """Who the public searches find, each searched for by A-number, by name and by name
    and date of birth; the three must agree."""
    found: set[str] = set()
    with engine.connect() as connection:
        for a_number, (born, _, _, _) in loaded.items():
            key = ("ana", fold_name(f"Case{a_number[-1]}"), "MX")
            by_a_number = lookup.by_a_number(connection, a_number, "MX")
            by_name = lookup.by_name(connection, *key)
            by_birth = lookup.by_name(connection, *key, born) if born else []
            assert len(by_a_number) <= 1 and by_name == by_a_number
            assert by_birth == (by_a_number if born else [])
            found |= {a_number} if by_a_number else set()
    return found


def test_searches_apply_the_rule_at_every_boundary(engine: Engine) -> None:
    loaded = _load(engine)
    assert _searched(engine, loaded) == {a for a, (_, _, _, public) in loaded.items() if public}
    assert _searched(engine, loaded) == _visible(engine)
    with engine.begin() as connection:
        migrate.sync_policy(connection, 30)
    assert "100000007" not in _searched(engine, loaded)
    with engine.begin() as connection:
        migrate.sync_policy(connection, 90)
    assert {"100000007", "100000008", "100000009"} <= _searched(engine, loaded)


def test_view_agrees_with_the_domain_rule(engine: Engine) -> None:
    _load(engine)
    now = datetime.now(UTC)
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                persons.c.a_number,
                persons.c.protection,
                persons.c.date_of_birth,
                custody_status.c.state,
                custody_status.c.left_custody_at,
            ).outerjoin(custody_status, custody_status.c.person_id == persons.c.id)
        ).all()
    by_rule = {
        r.a_number
        for r in rows
        if is_public(
            protection=Protection(r.protection),
            date_of_birth=r.date_of_birth,
            state=CustodyState(r.state) if r.state else None,
            left_custody_at=r.left_custody_at,
            now=now,
            retention_days=60,
        )
    }
    assert by_rule == _visible(engine)


def test_retention_window_comes_from_the_setting(engine: Engine) -> None:
    _load(engine)
    with engine.begin() as connection:
        migrate.sync_policy(connection, 30)
    assert "100000007" not in _visible(engine)
    with engine.begin() as connection:
        migrate.sync_policy(connection, 90)
    assert {"100000007", "100000008", "100000009"} <= _visible(engine)


def test_protecting_hides_and_a_staff_clear_shows(engine: Engine) -> None:
    _load(engine)
    lines = csv_lines(
        ["a_number", "status", "as_of"],
        ["100000001", "protected", datetime.now(UTC).date().isoformat()],
    )
    ingest_protections(engine, lines, source="late.csv")
    assert "100000001" not in _visible(engine)
    with engine.begin() as connection:
        person_id = person_ids_by_a_number(connection, ["100000001"])["100000001"]
        clear(
            connection,
            person_id,
            actor="supervisor",
            reason="screened: no 1367 protection",
            now=datetime.now(UTC),
        )
    assert "100000001" in _visible(engine)


def test_a_person_with_no_custody_record_is_never_public(engine: Engine) -> None:
    lines = csv_lines(
        ["a_number", "status", "as_of"],
        ["100000099", "cleared", datetime.now(UTC).date().isoformat()],
    )
    ingest_protections(engine, lines, source="p.csv")
    assert _visible(engine) == set()


@pytest.mark.parametrize("name", [("ANA", "CASE1"), ("ána", "case1")])
def test_lookups_are_exact_and_fold_case_and_accents(engine: Engine, name: tuple[str, str]) -> None:
    _load(engine)
    with engine.connect() as connection:
        by_name = lookup.by_name(connection, fold_name(name[0]), fold_name(name[1]), "MX")
        assert [p.family_name for p in by_name] == ["Case1"]
        assert lookup.by_name(connection, "an", "case1", "MX") == []
        assert lookup.by_name(connection, "ana", "case1", "GT") == []
        assert lookup.by_name(connection, "ana", "case1", "MX", date(1990, 1, 2)) == []
        assert len(lookup.by_name(connection, "ana", "case1", "MX", date(1990, 1, 1))) == 1
        assert len(lookup.by_a_number(connection, "100000001", "MX")) == 1
        assert lookup.by_a_number(connection, "100000003", "MX") == []  # protected


def test_aliases_match_but_the_display_name_stays(engine: Engine) -> None:
    load_facilities(engine, "F1")
    who = person(
        "100000001", "Ana", "Pérez", aliases=[{"given_name": "Anita", "family_name": "Pérez López"}]
    )
    ingest_events(
        engine, jsonl(event("b1", "booked", days_ago(3), who)), source="a.jsonl", fmt="jsonl"
    )
    later = person("100000001", "Ana María", "Pérez")
    ingest_events(
        engine, jsonl(event("t1", "transferred", days_ago(1), later)), source="b.jsonl", fmt="jsonl"
    )
    ingest_protections(
        engine,
        csv_lines(
            ["a_number", "status", "as_of"],
            ["100000001", "cleared", datetime.now(UTC).date().isoformat()],
        ),
        source="p.csv",
    )
    with engine.connect() as connection:
        for given, family in [("ana", "perez"), ("anita", "perez lopez"), ("ana maria", "perez")]:
            found = lookup.by_name(connection, given, family, "MX")
            assert [(p.given_name, p.family_name) for p in found] == [("Ana", "Pérez")]

"""Raw statements on the driver's cursor (`store.driver_sql`), on SQLite and PostgreSQL:
a list of keys finds exactly its rows whatever the keys hold, rows arrive as given (NULLs,
text, JSON, moments in the form UTCDateTime writes), an upsert inserts and updates."""

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, func, insert, select

from safevine.store.driver_sql import Driver, Row
from safevine.store.schema import custody_events, custody_status, persons
from safevine.store.types import UTCDateTime

NOW = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)

AWKWARD_KEYS = [
    'O\'Brien "quoted"',
    "back\\slash",
    "José Ñ",
    "مرحبا بالعالم",
    "smile 🙂",
    "x'); DROP TABLE persons; --",
    "Ñ" * 200,  # the column's whole width, in characters of two bytes
]

# Every column but the generated id, and every column of a status.
EVENT_COLUMNS = tuple(c.name for c in custody_events.c if c.name != "id")
STATUS_COLUMNS = tuple(c.name for c in custody_status.c)


def _person(connection: Connection, a_number: str) -> int:
    return int(
        connection.execute(
            insert(persons)
            .values(a_number=a_number, public_ref=f"ref-{a_number}", created_at=NOW, updated_at=NOW)
            .returning(persons.c.id)
        ).scalar_one()
    )


def _event(event_id: str, person_id: int, **values: Any) -> dict[str, Any]:
    """A custody_events row for SQLAlchemy Core, the test's own reference writer."""
    return {
        "event_id": event_id,
        "person_id": person_id,
        "kind": "booked",
        "occurred_at": NOW,
        "received_at": NOW,
        "details": {},
        "sequence": 0,
        "content_hash": "0" * 64,
        "origin": "feed",
        **values,
    }


def _event_row(driver: Driver, event_id: str, person_id: int, **values: Any) -> Row:
    """The same row as a tuple in `EVENT_COLUMNS` order, in the driver's form."""
    row: dict[str, Any] = {c: None for c in EVENT_COLUMNS}
    row.update(_event(event_id, person_id, details="{}"), **values)
    for column in EVENT_COLUMNS:
        if isinstance(custody_events.c[column].type, UTCDateTime):
            row[column] = driver.when(row[column])
    return tuple(row[c] for c in EVENT_COLUMNS)


def test_a_list_of_keys_finds_exactly_its_rows(engine: Engine) -> None:
    near_misses = ["O'Brien", "back\\\\slash", "jose n", "Ñ" * 199, "x"]
    with engine.begin() as connection:
        alice, bob = _person(connection, "A00000001"), _person(connection, "A00000002")
        connection.execute(
            insert(custody_events),
            [_event(k, alice) for k in AWKWARD_KEYS] + [_event(k, bob) for k in near_misses],
        )
        driver = Driver(connection)
        by_text = "SELECT event_id FROM custody_events WHERE event_id = ANY(?::text[])"
        found = driver.rows(by_text, [driver.keys([*AWKWARD_KEYS, "not stored"])])
        assert sorted(k for (k,) in found) == sorted(AWKWARD_KEYS)
        assert driver.rows(by_text, [driver.keys([])]) == []
        by_person = "SELECT event_id FROM custody_events WHERE person_id = ANY(?::bigint[])"
        found = driver.rows(by_person, [driver.keys([bob, 2**40])])
        assert sorted(k for (k,) in found) == sorted(near_misses)
        assert driver.rows(by_person, [driver.keys([])]) == []
        # The key that reads like SQL was only ever a value.
        assert len(connection.execute(select(persons.c.id)).all()) == 3  # with the decoy


def test_inserted_rows_read_back_as_given_and_as_sqlalchemy_writes_them(engine: Engine) -> None:
    with_micros = datetime(2026, 3, 1, 12, 0, 0, 123_456, tzinfo=UTC)
    eastern = datetime(2026, 3, 1, 7, 30, tzinfo=timezone(timedelta(hours=-5)))
    india = datetime(2025, 12, 31, 23, 59, 59, 999_999, tzinfo=timezone(timedelta(hours=5.5)))
    details = {"note": "ñandú 🙂", "quote": "'\"\\", "n": [1, None]}
    given = {
        "first": {
            "occurred_at": with_micros,
            "received_at": eastern,
            "details": json.dumps(details, ensure_ascii=False),
            "retracted_by": AWKWARD_KEYS[5],
        },
        "second": {"occurred_at": eastern, "retracted_at": india, "retraction_reason": "x" * 5000},
    }
    with engine.begin() as connection:
        person = _person(connection, "A00000001")
        driver = Driver(connection)
        # facility_id, batch_id and discarded_at are NULL on every row: arrays of only NULLs.
        driver.insert(
            custody_events,
            EVENT_COLUMNS,
            [_event_row(driver, k, person, **v) for k, v in given.items()],
        )
        # A reference row written by SQLAlchemy Core with the same moments.
        connection.execute(
            insert(custody_events),
            _event(
                "core", person, occurred_at=with_micros, received_at=eastern, retracted_at=india
            ),
        )
        raw = {
            r[0]: r[1:]
            for r in driver.rows(
                "SELECT event_id, occurred_at, received_at, retracted_at, facility_id, batch_id, "
                "discarded_at, retracted_by, retraction_reason FROM custody_events"
            )
        }
    # The driver's form is the very value UTCDateTime writes (on SQLite, the same text).
    assert raw["first"][:2] == raw["core"][:2]
    assert raw["second"][2] == raw["core"][2]
    first, second = raw["first"], raw["second"]
    moments = [driver.moment(v) for v in (*first[:3], *second[:3])]
    assert moments == [with_micros, eastern, None, eastern, NOW, india]
    assert all(m is None or m.utcoffset() == timedelta(0) for m in moments)
    assert moments[1] == datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    assert first[3:] == (None, None, None, AWKWARD_KEYS[5], None)
    assert second[3:] == (None, None, None, None, "x" * 5000)

    with engine.connect() as connection:
        core = {
            r.event_id: r
            for r in connection.execute(
                select(custody_events).where(custody_events.c.event_id.in_(given))
            )
        }
    assert core["first"].occurred_at == with_micros and core["second"].retracted_at == india
    assert core["first"].received_at == eastern and core["second"].occurred_at == eastern
    assert all(
        m.tzinfo is UTC
        for r in core.values()
        for m in (r.occurred_at, r.received_at, r.retracted_at)
        if m is not None
    )
    assert core["first"].details == details and core["second"].details == {}


def test_thousands_of_rows_in_one_call_all_arrive(engine: Engine) -> None:
    count = 3_000  # past SQLite's and PostgreSQL's limits on bound parameters per statement
    keys = [f"bulk-{n}-{AWKWARD_KEYS[n % len(AWKWARD_KEYS)][:150]}" for n in range(count)]
    with engine.begin() as connection:
        person = _person(connection, "A00000001")
        driver = Driver(connection)
        driver.insert(
            custody_events,
            EVENT_COLUMNS,
            [_event_row(driver, k, person, sequence=n) for n, k in enumerate(keys)],
        )
        found = driver.rows(
            "SELECT event_id, sequence FROM custody_events WHERE event_id = ANY(?::text[])",
            [driver.keys(keys)],
        )
    assert sorted(found, key=lambda r: r[1]) == [(k, n) for n, k in enumerate(keys)]


def test_upsert_inserts_new_keys_and_updates_existing_ones(engine: Engine) -> None:
    later = NOW + timedelta(days=1, microseconds=7)
    with engine.begin() as connection:
        kept, moved, new = (_person(connection, f"A0000000{n}") for n in range(1, 4))
        pks = {
            event_id: int(
                connection.execute(
                    insert(custody_events)
                    .values(_event(event_id, person))
                    .returning(custody_events.c.id)
                ).scalar_one()
            )
            for event_id, person in [("k1", kept), ("m1", moved), ("m2", moved), ("n1", new)]
        }
        driver = Driver(connection)

        def status(person: int, state: str, event_id: str, at: datetime, left: bool) -> Row:
            when = driver.when(at)
            return (
                person,
                state,
                None,
                pks[event_id],
                event_id,
                when,
                0,
                when if left else None,
                when,
            )

        driver.insert(
            custody_status,
            STATUS_COLUMNS,
            [
                status(kept, "in_custody", "k1", NOW, False),
                status(moved, "released", "m1", NOW, True),
            ],
        )
        driver.upsert(
            custody_status,
            "person_id",
            STATUS_COLUMNS,
            [
                status(moved, "in_custody", "m2", later, False),
                status(new, "released", "n1", later, True),
            ],
        )
        stored = {
            r.person_id: (r.state, r.event_pk, r.event_id, r.occurred_at, r.left_custody_at)
            for r in connection.execute(
                select(custody_status).where(custody_status.c.person_id.in_([kept, moved, new]))
            )
        }
    assert stored == {
        kept: ("in_custody", pks["k1"], "k1", NOW, None),
        moved: ("in_custody", pks["m2"], "m2", later, None),  # every column set, NULL included
        new: ("released", pks["n1"], "n1", later, later),
    }


def test_run_returns_the_rows_an_update_changed(engine: Engine) -> None:
    with engine.begin() as connection:
        person = _person(connection, "A00000001")
        connection.execute(insert(custody_events), [_event(k, person) for k in AWKWARD_KEYS])
        driver = Driver(connection)
        update = "UPDATE custody_events SET retracted_by = ? WHERE event_id = ANY(?::text[])"
        assert driver.run(update, ["staff", driver.keys([*AWKWARD_KEYS[:3], "absent"])]) == 3
        assert driver.run(update, ["staff", driver.keys([])]) == 0
        increment = "UPDATE custody_events SET sequence = sequence + ? WHERE person_id = ?"
        assert driver.run(increment, [1, person]) == len(AWKWARD_KEYS)


def test_statements_run_in_the_connections_transaction(engine: Engine) -> None:
    """A rollback of the SQLAlchemy transaction takes the driver's writes with it (only the
    migrations' decoy person and event remain)."""
    with pytest.raises(RuntimeError), engine.begin() as connection:
        person = _person(connection, "A00000001")
        driver = Driver(connection)
        driver.insert(custody_events, EVENT_COLUMNS, [_event_row(driver, "e", person)])
        raise RuntimeError("abandon")
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(custody_events)).scalar() == 1
        assert connection.execute(select(func.count()).select_from(persons)).scalar() == 1


def test_a_naive_moment_is_refused_on_both_databases(engine: Engine) -> None:
    """As the UTCDateTime column type refuses it: a moment without its offset is a mistake."""
    with engine.connect() as connection:
        driver = Driver(connection)
        with pytest.raises(ValueError, match="naive"):
            driver.when(datetime(2026, 1, 1, 12))


def test_new_ids_are_fresh_and_ascending_and_the_sequence_goes_on_after_them(
    postgres_engine: Engine,
) -> None:
    with postgres_engine.begin() as connection:
        driver = Driver(connection)
        first = driver.new_ids(custody_events, 3)
        second = driver.new_ids(custody_events, 10_000)
        assert first == sorted(set(first)) and second == sorted(set(second))
        assert len(second) == 10_000 and first[-1] < second[0]
        # The next id the table's own default gives comes after every id taken.
        [(after,)] = driver.rows(
            "SELECT nextval(pg_get_serial_sequence(?, 'id'))", ["custody_events"]
        )
        assert after > second[-1]
        assert driver.new_ids(custody_events, 0) == []

"""The search's prepared lookups answer exactly as `lookup.py`'s statements do, on held
connections that keep the public walls, never sit in a transaction, survive the server
closing them, and close with the engine."""

import time
from collections.abc import Iterator
from datetime import date

import pytest
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError

from safevine.domain.names import fold_name
from safevine.ingest.events import ingest_events
from safevine.ingest.protections import ingest_protections
from safevine.store.public import lookup
from safevine.store.public.connection import make_public_engine
from safevine.store.public.prepared_lookup import PreparedLookups
from tests.builders import NOW, csv_lines, days_ago, jsonl, person
from tests.builders import event as custody_event
from tests.canaries import NEVER_EXISTED, NON_PUBLIC, PUBLIC, plant
from tests.public_schema import drop_public_reads

# Four public namesakes (three share a date of birth) and one protected: a name search
# expands IN (...) to several references, and the order of the answer matters.
NAMESAKES = {
    "310000001": ("Lucía", "Ferreira Gómez", date(1980, 1, 1), "cleared"),
    "310000002": ("LUCIA", "Ferreira Gomez", date(1980, 1, 1), "cleared"),
    "310000003": ("Lucia", "ferreira gómez", date(1980, 1, 1), "cleared"),
    "310000004": ("Lucía", "Ferreira Gómez", date(1991, 6, 2), "cleared"),
    "310000005": ("Lucía", "Ferreira Gómez", date(1980, 1, 1), "protected"),
}


def _plant_namesakes(engine: Engine) -> None:
    records = [
        custody_event(f"b-{a}", "booked", days_ago(10), person(a, g, f, born=born, country="MX"))
        for a, (g, f, born, _) in NAMESAKES.items()
    ]
    assert ingest_events(engine, jsonl(*records), source="n.jsonl", fmt="jsonl").rejected == 0
    rows = [[a, p, NOW.date().isoformat()] for a, (_, _, _, p) in NAMESAKES.items()]
    summary = ingest_protections(
        engine, csv_lines(["a_number", "status", "as_of"], *rows), source="n.csv"
    )
    assert summary.rejected == 0


@pytest.fixture
def public(engine: Engine) -> Iterator[Engine]:
    plant(engine)
    _plant_namesakes(engine)
    public = make_public_engine(engine.url.render_as_string(hide_password=False))
    yield public
    public.dispose()


def _searches() -> list[tuple[str, tuple[object, ...]]]:
    searches: list[tuple[str, tuple[object, ...]]] = []
    for canary in [PUBLIC, NEVER_EXISTED, *NON_PUBLIC]:
        searches.append(("by_a_number", (canary.a_number, canary.country)))
        key = (fold_name(canary.given), fold_name(canary.family), canary.country)
        searches.append(("by_name", key))
        searches.append(("by_name", (*key, canary.born)))
    lucia = (fold_name("Lucía"), fold_name("Ferreira Gómez"), "MX")
    searches += [
        ("by_name", lucia),
        ("by_name", (*lucia, date(1980, 1, 1))),
        ("by_name", (*lucia, date(1991, 6, 2))),
        ("by_name", (lucia[0], lucia[1], "GT")),
        *(("by_a_number", (a, "MX")) for a in NAMESAKES),
    ]
    return searches


def test_every_answer_is_the_statements_answer(public: Engine) -> None:
    prepared = PreparedLookups(public)
    lucia = (fold_name("Lucía"), fold_name("Ferreira Gómez"), "MX")
    found_namesakes = 0
    with public.connect() as connection:
        for how, arguments in _searches():
            expected = getattr(lookup, how)(connection, *arguments)
            assert getattr(prepared, how)(*arguments) == expected, (how, arguments)
            if arguments == lucia:
                found_namesakes = len(expected)
    assert found_namesakes == 4  # the protected namesake is not among them
    assert prepared.by_a_number(PUBLIC.a_number, PUBLIC.country)[0].status_since.tzinfo


def test_the_same_statements_run_for_hidden_and_absent_people(public: Engine) -> None:
    prepared = PreparedLookups(public)
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        seen.append(statement)

    event.listen(public, "before_cursor_execute", record)
    by_statement: list[list[str]] = []
    for canary in [NEVER_EXISTED, *NON_PUBLIC]:
        seen.clear()
        assert prepared.by_a_number(canary.a_number, canary.country) == []
        assert prepared.by_name(fold_name(canary.given), fold_name(canary.family), "GT") == []
        by_statement.append(list(seen))
    assert by_statement[0] and all(s == by_statement[0] for s in by_statement)


def test_a_held_connection_is_never_left_in_a_transaction(postgres_engine: Engine) -> None:
    plant(postgres_engine)
    public = make_public_engine(postgres_engine.url.render_as_string(hide_password=False))
    try:
        prepared = PreparedLookups(public)
        assert prepared.blocks
        assert prepared.by_a_number(PUBLIC.a_number, PUBLIC.country)
        connection = prepared._connection()
        dbapi = connection.connection.dbapi_connection
        assert dbapi.autocommit  # type: ignore[union-attr]
        assert dbapi.info.transaction_status == 0  # type: ignore[union-attr]  # IDLE
        cursor = dbapi.cursor()  # type: ignore[union-attr]
        cursor.execute("SELECT current_user")
        assert cursor.fetchone() == ("safevine_public",)
    finally:
        public.dispose()


def test_sqlite_lookups_do_not_block_and_keep_the_walls(sqlite_engine: Engine) -> None:
    plant(sqlite_engine)
    public = make_public_engine(sqlite_engine.url.render_as_string(hide_password=False))
    try:
        prepared = PreparedLookups(public)
        assert not prepared.blocks
        assert prepared.by_a_number(PUBLIC.a_number, PUBLIC.country)
        dbapi = prepared._connection().connection.dbapi_connection
        assert not dbapi.in_transaction  # type: ignore[union-attr]
        with pytest.raises(Exception, match=r"not authorized|prohibited"):
            dbapi.execute("SELECT * FROM persons")  # type: ignore[union-attr]
    finally:
        public.dispose()


def test_a_connection_the_server_closed_is_replaced(postgres_engine: Engine) -> None:
    plant(postgres_engine)
    url = postgres_engine.url.render_as_string(hide_password=False)
    public = make_public_engine(url)
    try:
        prepared = PreparedLookups(public)
        assert prepared.by_a_number(PUBLIC.a_number, PUBLIC.country)
        dbapi = prepared._connection().connection.dbapi_connection
        pid = dbapi.info.backend_pid  # type: ignore[union-attr]
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        admin.dispose()
        assert prepared.by_a_number(PUBLIC.a_number, PUBLIC.country)
        assert prepared._connection().connection.dbapi_connection is not dbapi
    finally:
        public.dispose()


def test_dispose_closes_the_held_connections(engine: Engine) -> None:
    plant(engine)
    public = make_public_engine(engine.url.render_as_string(hide_password=False))
    prepared = PreparedLookups(public)
    prepared.by_a_number(PUBLIC.a_number, PUBLIC.country)
    dbapi = prepared._connection().connection.dbapi_connection
    assert dbapi is not None
    public.dispose()
    with pytest.raises(Exception, match=r"closed"):
        dbapi.cursor().execute("SELECT 1")
    # A search after that opens a new one.
    assert prepared.by_a_number(PUBLIC.a_number, PUBLIC.country)
    public.dispose()


def test_database_errors_are_sqlalchemy_errors_without_the_parameters(engine: Engine) -> None:
    plant(engine)
    public = make_public_engine(engine.url.render_as_string(hide_password=False))
    try:
        prepared = PreparedLookups(public)
        with engine.begin() as connection:
            drop_public_reads(connection)
        with pytest.raises(DBAPIError) as raised:
            prepared.by_a_number(PUBLIC.a_number, PUBLIC.country)
        assert PUBLIC.a_number not in str(raised.value)
        with pytest.raises(DBAPIError) as raised:
            prepared.by_name(fold_name(PUBLIC.given), fold_name(PUBLIC.family), "MX")
        assert fold_name(PUBLIC.family) not in str(raised.value)
    finally:
        public.dispose()


def test_sqlite_lookups_do_not_wait_for_a_writer(sqlite_engine: Engine) -> None:
    """They run on the serving thread: a write transaction held open elsewhere (an ingest)
    must not make them wait for the busy timeout."""
    plant(sqlite_engine)
    public = make_public_engine(sqlite_engine.url.render_as_string(hide_password=False))
    writer = sqlite_engine.raw_connection()
    try:
        prepared = PreparedLookups(public)
        assert prepared.by_a_number(PUBLIC.a_number, PUBLIC.country)
        cursor = writer.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        cursor.execute("UPDATE facilities SET name = name || ' (moved)'")
        began = time.perf_counter()
        found = prepared.by_a_number(PUBLIC.a_number, PUBLIC.country)
        assert time.perf_counter() - began < 1.0
        assert found and "(moved)" not in (found[0].facility_name or "")
        writer.rollback()
    finally:
        writer.close()
        public.dispose()

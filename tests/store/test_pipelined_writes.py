"""A chunk's writes on PostgreSQL go out together (psycopg's pipeline mode): `record_events`
runs its caller's `meanwhile` while the server applies them, and what they store is what
writing them one by one stored. On SQLite nothing is pipelined and `meanwhile` still runs
once the writes are done."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from psycopg import pq
from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.exc import IntegrityError

from safevine.domain.custody_event import CustodyEventInput, PersonFacts
from safevine.domain.event_kinds import EventKind
from safevine.store.records.events import RecordedEvents, record_events
from safevine.store.schema import custody_events, custody_status, persons
from tests.builders import load_facilities

NOW = datetime(2026, 3, 1, 8, tzinfo=UTC)


def _events(tag: str) -> list[CustodyEventInput]:
    return [
        CustodyEventInput(
            f"{tag}-{n}",
            EventKind.BOOKED,
            NOW - timedelta(hours=n),
            PersonFacts(f"20000100{n}"),
            "F1",
        )
        for n in range(3)
    ]


def _record(
    connection: Connection,
    events: list[CustodyEventInput],
    meanwhile: Callable[[], object] | None = None,
) -> RecordedEvents:
    return record_events(
        connection, events, origin="feed", now=NOW, source="t", meanwhile=meanwhile
    )


def _pipeline(connection: Connection) -> str:
    if connection.dialect.name != "postgresql":
        return "none"
    status = connection.connection.driver_connection.pgconn.pipeline_status  # type: ignore[union-attr]
    return "on" if status == pq.PipelineStatus.ON else "off"


def test_meanwhile_runs_while_the_writes_are_on_their_way(engine: Engine) -> None:
    load_facilities(engine, "F1")
    seen: list[str] = []
    with engine.begin() as connection:
        result = _record(connection, _events("p"), lambda: seen.append(_pipeline(connection)))
        # Once it returns, every write is done: the transaction reads them back.
        statuses = connection.execute(
            select(persons.c.a_number, custody_status.c.event_id, custody_status.c.event_pk)
            .join(custody_status, custody_status.c.person_id == persons.c.id)
            .where(custody_status.c.event_id.like("p-%"))
            .order_by(persons.c.a_number)
        ).all()
        ids = dict(
            connection.execute(
                select(custody_events.c.event_id, custody_events.c.id).where(
                    custody_events.c.event_id.like("p-%")
                )
            ).all()
        )
    assert seen == (["on"] if engine.dialect.name == "postgresql" else ["none"])
    assert len(result.stored) == 3 and result.status_changes == 3
    # Each status points at its event's row by the id the row was stored under (on
    # PostgreSQL taken from the sequence before the rows were written).
    assert [(a, e) for a, e, _ in statuses] == [(f"20000100{n}", f"p-{n}") for n in range(3)]
    assert all(pk == ids[event_id] for _, event_id, pk in statuses)
    assert {s.pk for s in result.stored} == set(ids.values())

    # Nothing new to write (all resends): nothing is on its way, so it is not called.
    with engine.begin() as connection:
        again = _record(connection, _events("p"), lambda: seen.append("again"))
    assert again.duplicates == 3 and len(seen) == 1


def test_a_failure_beside_a_refused_write_leaves_no_row_in_the_log(
    postgres_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """A write the server refuses while `meanwhile` fails too: nothing logs the refused row
    (psycopg logs it, values and all, when a pipeline ends under another error with a
    refusal still unread), and nothing is stored. The caller gets whichever failure came
    first: the refusal, if the server's answer arrived while later writes were being sent,
    or else the failure of `meanwhile`."""
    load_facilities(postgres_engine, "F1")
    with postgres_engine.begin() as connection:
        connection.execute(
            text("ALTER TABLE custody_events ADD CONSTRAINT refuse_p1 CHECK (event_id <> 'p-1')")
        )

    def read_fails() -> None:
        raise RuntimeError("the next chunk could not be read")

    with pytest.raises((RuntimeError, IntegrityError)), postgres_engine.begin() as connection:
        _record(connection, _events("p"), read_fails)
    assert "refuse_p1" not in caplog.text and "p-1" not in caplog.text
    with postgres_engine.connect() as connection:
        stored = connection.execute(
            select(custody_events.c.event_id).where(custody_events.c.event_id.like("p-%"))
        ).all()
    assert stored == []


def test_sqlite_reads_the_statuses_inside_the_transaction_its_first_write_began(
    sqlite_engine: Engine,
) -> None:
    """pysqlite begins a transaction only at a write, so a status read before the chunk's
    first write would be outside it: another writer's status change could land between the
    read and the upsert, and be overwritten. The events are written first there."""
    load_facilities(sqlite_engine, "F1")
    with sqlite_engine.begin() as connection:
        _record(connection, _events("s"))
    # The same people again, nothing new about them: the events are the first write.
    later = [
        CustodyEventInput(
            f"t-{n}", EventKind.RELEASED, NOW, PersonFacts(f"20000100{n}"), "F1", 0, {}
        )
        for n in range(3)
    ]
    statements: list[str] = []
    with sqlite_engine.begin() as connection:
        raw = connection.connection.driver_connection
        raw.set_trace_callback(statements.append)  # type: ignore[union-attr]
        try:
            result = _record(connection, later)
        finally:
            raw.set_trace_callback(None)  # type: ignore[union-attr]
    begun = next(n for n, s in enumerate(statements) if s.strip().upper() == "BEGIN")
    first_write = next(n for n, s in enumerate(statements) if s.startswith("INSERT"))
    status_read = next(n for n, s in enumerate(statements) if "FROM custody_status s" in s)
    registrations_read = next(n for n, s in enumerate(statements) if "FROM registrations" in s)
    assert result.status_changes == 3
    assert statements[first_write].startswith("INSERT INTO custody_events")
    assert begun < first_write < status_read
    assert first_write < registrations_read

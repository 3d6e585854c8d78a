"""The search's awaited lookups on PostgreSQL answer exactly as the prepared ones do, on
connections that keep the public walls, never sit in a transaction, stay within their
number however many searches wait (those waiting together going in one round trip),
survive the server closing them, a search being cancelled or another's error in the same
batch, and close with the engine."""

import asyncio
import os
import socket
import time
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from sqlalchemy import (
    Engine,
    Integer,
    String,
    bindparam,
    cast,
    create_engine,
    event,
    literal_column,
    select,
    text,
)
from sqlalchemy.exc import DBAPIError

from safevine.domain.names import fold_name
from safevine.store.public import awaited_lookup, lookup, lookup_batch, waiting_lookups
from safevine.store.public.awaited_lookup import AwaitedLookups
from safevine.store.public.connection import make_public_engine
from safevine.store.public.libpq_statement import LibpqStatement
from safevine.store.public.lookup_batch import Outcome
from safevine.store.public.prepared_lookup import PreparedLookups, PreparedStatement
from tests.canaries import NEVER_EXISTED, NON_PUBLIC, PUBLIC, plant
from tests.loops import run
from tests.public_schema import drop_public_reads
from tests.web.test_prepared_lookup import _plant_namesakes, _searches


@pytest.fixture
def public(postgres_engine: Engine) -> Iterator[Engine]:
    plant(postgres_engine)
    _plant_namesakes(postgres_engine)
    public = make_public_engine(postgres_engine.url.render_as_string(hide_password=False))
    yield public
    public.dispose()


def _backends(url: str, pids: set[int]) -> set[int]:
    """Those of `pids` the server still has."""
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            rows = connection.execute(text("SELECT pid FROM pg_stat_activity")).scalars()
            return pids & set(rows)
    finally:
        admin.dispose()


def _pids(lookups: AwaitedLookups) -> set[int]:
    return {c.info.backend_pid for c in lookups._opened}


def test_every_answer_is_the_prepared_answer(public: Engine) -> None:
    prepared = PreparedLookups(public)
    awaited = AwaitedLookups(public)

    async def answers() -> list[Any]:
        return [await getattr(awaited, how)(*arguments) for how, arguments in _searches()]

    expected = [getattr(prepared, how)(*arguments) for how, arguments in _searches()]
    assert run(answers()) == expected
    assert any(len(found) == 4 for found in expected)  # the four public namesakes
    assert any(found and found[0].status_since.tzinfo for found in expected)


def test_by_reference_answers_as_the_statement_does(public: Engine) -> None:
    awaited = AwaitedLookups(public)
    with public.connect() as connection:
        found = lookup.by_name(connection, fold_name("Lucía"), fold_name("Ferreira Gómez"), "MX")
        refs = [p.public_ref for p in found] + ["no-such-reference"]
        expected = lookup.by_reference(connection, refs)

    async def by_reference() -> list[Any]:
        return [await awaited.by_reference(refs), await awaited.by_reference([])]

    answered, none = run(by_reference())
    assert len(expected) == 4 and none == []
    assert sorted(answered, key=repr) == sorted(expected, key=repr)


def test_hidden_and_absent_people_run_the_same_statements(public: Engine) -> None:
    awaited = AwaitedLookups(public)
    seen: list[str] = []
    event.listen(public, "before_cursor_execute", lambda *a: seen.append(a[2]))

    async def search(given: str, family: str, a_number: str, country: str) -> list[Any]:
        return [
            await awaited.by_a_number(a_number, country),
            await awaited.by_name(fold_name(given), fold_name(family), country),
        ]

    by_statement: list[list[str]] = []
    for canary in [NEVER_EXISTED, *NON_PUBLIC]:
        seen.clear()
        found = run(search(canary.given, canary.family, canary.a_number, canary.country))
        assert found == [[], []]
        by_statement.append(list(seen))
    assert len(by_statement[0]) == 2 and all(s == by_statement[0] for s in by_statement)


def test_connections_keep_the_public_walls_and_no_transaction(public: Engine) -> None:
    awaited = AwaitedLookups(public)

    async def check() -> tuple[Any, ...]:
        assert await awaited.by_a_number(PUBLIC.a_number, PUBLIC.country)
        connection = next(iter(awaited._opened))
        role = await (await connection.execute("SELECT current_user")).fetchone()
        status = connection.info.transaction_status
        try:
            await connection.execute("SELECT a_number FROM persons")
        except Exception as error:
            return role, status, connection.autocommit, str(error)
        return role, status, connection.autocommit, "read persons"

    role, status, autocommit, refused = run(check())
    assert role == ("safevine_public",) and autocommit and status == 0  # IDLE
    assert "permission denied" in refused


def _recording_batches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every batch the lookups send, in order."""
    sizes: list[int] = []
    send = lookup_batch.send_batch

    async def recording(connection: Any, lookups: list[Any], prepared: Any) -> Outcome:
        sizes.append(len(lookups))
        return await send(connection, lookups, prepared)

    monkeypatch.setattr(awaited_lookup, "send_batch", recording)
    return sizes


def test_searches_waiting_together_go_in_batches_on_the_connections_allowed(
    public: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes = _recording_batches(monkeypatch)
    awaited = AwaitedLookups(public, connections=2)

    async def many() -> list[list[Any]]:
        hits = [awaited.by_a_number(PUBLIC.a_number, PUBLIC.country) for _ in range(30)]
        misses = [awaited.by_a_number(NEVER_EXISTED.a_number, "MX") for _ in range(30)]
        return await asyncio.gather(*hits, *misses)

    answers = run(many())
    alone = PreparedLookups(public).by_a_number(PUBLIC.a_number, PUBLIC.country)
    assert answers == [alone] * 30 + [[]] * 30 and alone[0].given_name == PUBLIC.given
    whole, rest = divmod(60, waiting_lookups.BATCH_MAX)
    assert sizes == [waiting_lookups.BATCH_MAX] * whole + ([rest] if rest else [])
    assert awaited.connections == 2


def test_many_waiting_searches_share_the_few_connections(
    public: Engine, postgres_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Searches arriving while a batch is on its way open connections up to the number and
    no further, and those arriving while every connection is busy go next, in batches."""
    sizes = _recording_batches(monkeypatch)
    awaited = AwaitedLookups(public, connections=2)
    most = 0

    async def one() -> int:
        nonlocal most
        found = await awaited.by_a_number(PUBLIC.a_number, PUBLIC.country)
        most = max(most, awaited.connections)
        return len(found)

    async def until(condition: Any) -> None:
        deadline = time.monotonic() + 10
        while not condition():
            assert time.monotonic() < deadline, "the lookups were not sent"
            await asyncio.sleep(0.01)

    async def scenario(release: Any) -> list[int]:
        first = asyncio.ensure_future(one())
        await until(lambda: len(awaited._sending) == 1)  # sent, waiting for the lock
        second = asyncio.ensure_future(one())
        await until(lambda: len(awaited._sending) == 2)  # on a second connection
        rest = [asyncio.ensure_future(one()) for _ in range(38)]
        await asyncio.sleep(0.2)  # waiting for a connection to come free
        release()
        return await asyncio.wait_for(asyncio.gather(first, second, *rest), 30)

    # The lookups' table locked, so that each batch stays on its way until released.
    with postgres_engine.connect() as locker:
        locker.execute(text("LOCK TABLE persons IN ACCESS EXCLUSIVE MODE"))
        answers = run(scenario(locker.rollback))
    assert answers == [1] * 40
    assert most == 2 and awaited.connections == 2
    whole, rest = divmod(38, waiting_lookups.BATCH_MAX)
    assert sizes == [1, 1] + [waiting_lookups.BATCH_MAX] * whole + ([rest] if rest else [])


def test_a_cancelled_search_leaves_no_busy_connection_behind(public: Engine) -> None:
    awaited = AwaitedLookups(public, connections=1)

    async def scenario() -> list[Any]:
        slow = asyncio.ensure_future(awaited.by_a_number(PUBLIC.a_number, PUBLIC.country))
        waiting = asyncio.ensure_future(awaited.by_a_number(PUBLIC.a_number, PUBLIC.country))
        behind = asyncio.ensure_future(awaited.by_a_number(PUBLIC.a_number, PUBLIC.country))
        await asyncio.sleep(0)
        waiting.cancel()  # gave up while waiting for the one connection
        first = await slow
        found = await asyncio.wait_for(behind, 10)
        again = await asyncio.wait_for(awaited.by_a_number(PUBLIC.a_number, PUBLIC.country), 10)
        return [first, found, again, waiting.cancelled()]

    first, found, again, cancelled = run(scenario())
    assert first and found == first and again == first and cancelled
    assert awaited.connections == 1


def test_a_connection_the_server_closed_is_replaced(public: Engine) -> None:
    url = public.url.render_as_string(hide_password=False)
    awaited = AwaitedLookups(public)

    async def search() -> int:
        return len(await awaited.by_a_number(PUBLIC.a_number, PUBLIC.country))

    assert run(search()) == 1
    before = _pids(awaited)
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        for pid in before:
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    admin.dispose()
    assert run(search()) == 1
    assert _pids(awaited).isdisjoint(before)


def test_dispose_closes_the_connections(public: Engine) -> None:
    url = public.url.render_as_string(hide_password=False)
    awaited = AwaitedLookups(public)

    async def search() -> int:
        return len(await awaited.by_a_number(PUBLIC.a_number, PUBLIC.country))

    assert run(search()) == 1
    pids = _pids(awaited)
    assert pids and _backends(url, pids) == pids
    public.dispose()
    assert awaited.connections == 0
    # The server sees the client go at once or a moment later.
    for _ in range(50):
        if not _backends(url, pids):
            break
        run(asyncio.sleep(0.1))
    assert not _backends(url, pids)
    assert run(search()) == 1  # a search after that opens a new one


def test_database_errors_are_sqlalchemy_errors_without_the_parameters(
    public: Engine, postgres_engine: Engine
) -> None:
    awaited = AwaitedLookups(public)
    with postgres_engine.begin() as connection:
        drop_public_reads(connection)

    async def search() -> None:
        await awaited.by_name(fold_name(PUBLIC.given), fold_name(PUBLIC.family), "MX")

    with pytest.raises(DBAPIError) as raised:
        run(search())
    assert fold_name(PUBLIC.family) not in str(raised.value)
    assert awaited.connections == 1  # an answer with an error does not break the connection


def test_one_lookups_error_leaves_the_others_in_its_batch_answered(
    public: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server skips the rest of a pipeline after an error: those skipped are sent
    again, and only the lookup that failed gets an error, without its parameters."""
    sizes = _recording_batches(monkeypatch)
    awaited = AwaitedLookups(public, connections=1)
    failing = PreparedStatement(
        select(
            cast(literal_column("1") / cast(bindparam("divisor", type_=String), Integer), Integer)
        ),
        public.dialect,
    )

    async def batch() -> Any:
        return await asyncio.gather(
            awaited.by_a_number(PUBLIC.a_number, PUBLIC.country),
            awaited._run(failing, {"divisor": "0"}),
            awaited.by_a_number(NON_PUBLIC[0].a_number, NON_PUBLIC[0].country),
            awaited.by_a_number(PUBLIC.a_number, PUBLIC.country),
            awaited._run(failing, {"divisor": "1"}),
            return_exceptions=True,
        )

    found, error, hidden, again, divided = run(batch())
    alone = PreparedLookups(public).by_a_number(PUBLIC.a_number, PUBLIC.country)
    assert found == again == alone and hidden == [] and divided == [(1,)]
    assert isinstance(error, DBAPIError) and "division by zero" in str(error)
    assert "parameters hidden" in str(error) and "'0'" not in str(error)
    assert sizes == [5, 3] and awaited.connections == 1


def test_a_failure_not_the_databases_fails_its_batch_and_ends_the_connection(
    public: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows that cannot be read, say: each search of the batch fails with it (and is
    answered by the safety layer's generic 500), never left waiting, and the connection,
    its answers unread, is not used again."""
    awaited = AwaitedLookups(public, connections=1)
    send = lookup_batch.send_batch
    calls = 0

    async def unreadable_once(connection: Any, lookups: list[Any], prepared: Any) -> Outcome:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise ValueError("unreadable rows")
        return await send(connection, lookups, prepared)

    monkeypatch.setattr(awaited_lookup, "send_batch", unreadable_once)

    async def scenario() -> tuple[Any, ...]:
        await awaited.by_a_number(PUBLIC.a_number, PUBLIC.country)
        before = _pids(awaited)
        failed = await asyncio.wait_for(
            asyncio.gather(
                awaited.by_a_number(PUBLIC.a_number, PUBLIC.country),
                awaited.by_a_number(NEVER_EXISTED.a_number, "MX"),
                return_exceptions=True,
            ),
            10,
        )
        after = await awaited.by_a_number(PUBLIC.a_number, PUBLIC.country)
        return before, failed, after, _pids(awaited)

    before, failed, after, pids = run(scenario())
    assert [type(error) for error in failed] == [ValueError, ValueError]
    assert len(after) == 1 and pids and not pids & before


def test_only_for_postgresql(sqlite_engine: Engine) -> None:
    with pytest.raises(ValueError, match="PostgreSQL"):
        AwaitedLookups(sqlite_engine)


def test_searches_waiting_for_a_connection_that_cannot_be_made_get_an_error() -> None:
    """The server does not answer: the search making the one connection fails when its
    connect timeout ends, and those waiting for it try for themselves and fail too, rather
    than wait for a connection that never comes."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the handshake completes; nothing ever answers
        port = silent.getsockname()[1]
        url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/nowhere?connect_timeout=1"
        down = make_public_engine(url)
        awaited = AwaitedLookups(down, connections=1)

        async def three() -> list[object]:
            searches = [awaited.by_a_number(PUBLIC.a_number, PUBLIC.country) for _ in range(3)]
            return await asyncio.wait_for(asyncio.gather(*searches, return_exceptions=True), 20)

        try:
            answers = run(three())
        finally:
            down.dispose()
    assert len(answers) == 3 and all(isinstance(a, DBAPIError) for a in answers), answers
    assert PUBLIC.a_number not in " ".join(str(a) for a in answers)
    assert awaited.connections == 0


async def _prepared_names(connection: Any) -> list[str]:
    cursor = await connection.execute("SELECT name FROM pg_prepared_statements ORDER BY name")
    return [name for (name,) in await cursor.fetchall()]


def test_lookups_go_straight_to_libpq_prepared_once_a_connection(public: Engine) -> None:
    """A search's statement is prepared on its connection under safevine's own name and
    run through libpq, not psycopg's cursor, and so is a confirmation by reference (a
    statement for each number of references), up to a bound: past it, the cursor."""
    awaited = AwaitedLookups(public, connections=1)

    async def scenario() -> tuple[list[str], list[str]]:
        for _ in range(3):
            assert await awaited.by_a_number(PUBLIC.a_number, PUBLIC.country)
            await awaited.by_name(fold_name(PUBLIC.given), fold_name(PUBLIC.family), "MX")
        connection = next(iter(awaited._opened))
        direct = await _prepared_names(connection)
        for size in range(1, 80):
            await awaited.by_reference([f"no-such-reference-{n}" for n in range(size)])
        return direct, await _prepared_names(connection)

    direct, after = run(scenario())
    assert len(direct) == 2 and all(n.startswith("safevine_lookup_") for n in direct)
    ours = [n for n in after if n.startswith("safevine_lookup_")]
    assert len(ours) == awaited_lookup._DIRECT_KEPT  # 2 searches, 62 sizes of reference
    assert len(after) == len(ours) + 80 - 1 - 62  # the rest, psycopg's cursor's own


def test_statements_gone_from_the_session_are_prepared_again(public: Engine) -> None:
    awaited = AwaitedLookups(public, connections=1)

    async def scenario() -> list[Any]:
        first = await awaited.by_a_number(PUBLIC.a_number, PUBLIC.country)
        connection = next(iter(awaited._opened))
        await connection.execute("DEALLOCATE ALL")
        again = await awaited.by_a_number(PUBLIC.a_number, PUBLIC.country)
        return [first, again, len(await _prepared_names(connection)), awaited.connections]

    first, again, prepared, connections = run(scenario())
    assert first and again == first and prepared == 1 and connections == 1


def test_a_value_libpq_would_cut_short_goes_to_the_cursor_and_its_error() -> None:
    statement = LibpqStatement(
        "SELECT * FROM f(%(a)s::VARCHAR, %(b)s::DATE, %(a)s::VARCHAR) WHERE x LIKE 'y%%'"
    )
    assert (
        statement.command
        == b"SELECT * FROM f($1::VARCHAR, $2::DATE, $3::VARCHAR) WHERE x LIKE 'y%'"
    )
    assert statement.values({"a": "Ana", "b": date(1990, 5, 1)}) == [b"Ana", b"1990-05-01", b"Ana"]
    assert statement.values({"a": "Ana", "b": None}) == [b"Ana", None, b"Ana"]
    assert statement.values({"a": "A\0na", "b": None}) is None
    assert statement.values({"a": ["Ana"], "b": None}) is None
    assert statement.values({"a": 1, "b": None}) is None


def test_a_nul_in_a_search_is_the_cursors_error(public: Engine) -> None:
    awaited = AwaitedLookups(public)

    async def search() -> None:
        await awaited.by_name("a\0b", fold_name(PUBLIC.family), "MX")

    with pytest.raises(DBAPIError) as raised:
        run(search())
    assert "NUL" in str(raised.value) and "a\0b" not in str(raised.value)


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_psycopgs_own_waits_on_a_connection_leave_its_lookups_answering(public: Engine) -> None:
    """A lookup waits with a reader kept on a duplicate of the socket (`Readiness`);
    psycopg's cursor waits on the socket itself, with readers of its own. Taking turns
    on one connection, in one loop, neither takes the other's reader away: no lookup
    stalls (each is bounded here, so a stall fails instead of hanging)."""
    awaited = AwaitedLookups(public, connections=1)

    async def search() -> int:
        return len(await asyncio.wait_for(awaited.by_a_number(PUBLIC.a_number, PUBLIC.country), 10))

    async def scenario() -> list[int]:
        found = []
        loop = asyncio.get_running_loop()
        for _ in range(3):
            # Not through wait_for, whose task would give the loop a turn in between.
            found.append(len(await awaited.by_a_number(PUBLIC.a_number, PUBLIC.country)))
            connection = next(iter(awaited._opened))
            # What psycopg's waits do to the socket's readers, right after a lookup.
            loop.add_reader(connection.pgconn.socket, lambda: None)
            loop.remove_reader(connection.pgconn.socket)
            found.append(await search())
            await asyncio.wait_for(connection.execute("SELECT pg_sleep(0.01)"), 10)
            await asyncio.wait_for(_prepared_names(connection), 10)
        return found

    assert run(scenario()) == [1] * 6
    assert awaited.connections == 1


def test_an_idle_connection_the_server_ends_costs_the_loop_nothing(public: Engine) -> None:
    """The server ends an idle connection: its socket stays readable (the goodbye, then
    the end), and the reader, with no lookup waiting, takes itself off rather than wake
    the loop again and again. The next search gets a new connection."""
    url = public.url.render_as_string(hide_password=False)
    awaited = AwaitedLookups(public, connections=1)

    def terminate(pids: set[int]) -> None:
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            for pid in pids:
                connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        admin.dispose()

    async def scenario() -> tuple[float, int]:
        assert await awaited.by_a_number(PUBLIC.a_number, PUBLIC.country)
        await asyncio.to_thread(terminate, _pids(awaited))
        began = time.thread_time()
        await asyncio.sleep(1)
        spent = time.thread_time() - began
        again = await asyncio.wait_for(awaited.by_a_number(PUBLIC.a_number, PUBLIC.country), 10)
        return spent, len(again)

    spent, again = run(scenario())
    assert spent < 0.2, f"the loop's thread used {spent:.2f} s of CPU in a second of waiting"
    assert again == 1


def test_the_duplicate_socket_closes_with_the_connections(public: Engine) -> None:
    """Each connection's watch holds a duplicate of its socket's descriptor, closed with
    the connection: nothing is left open once the lookups are closed."""
    awaited = AwaitedLookups(public, connections=2)
    before = _open_descriptors()

    async def searches() -> list[int]:
        found = [awaited.by_a_number(PUBLIC.a_number, PUBLIC.country) for _ in range(6)]
        return [len(f) for f in await asyncio.gather(*found)]

    assert run(searches()) == [1] * 6
    assert _open_descriptors() == before + 2 * awaited.connections  # a socket and its twin
    awaited.close()
    assert _open_descriptors() == before


def test_a_waiting_search_is_served_before_one_that_comes_later(public: Engine) -> None:
    """First come, first served: a connection given back goes to the search that has
    waited longest, not to one arriving just then (which had left a waiting search behind
    one busy caller for as long as that caller kept searching)."""
    awaited = AwaitedLookups(public, connections=1)
    done: list[str] = []

    async def busy() -> None:
        for n in range(5):
            await awaited.by_a_number(PUBLIC.a_number, PUBLIC.country)
            done.append(f"busy {n}")

    async def patient() -> None:
        await awaited.by_a_number(PUBLIC.a_number, PUBLIC.country)
        done.append("patient")

    async def scenario() -> None:
        first = asyncio.ensure_future(busy())
        await asyncio.sleep(0)  # the busy caller holds the one connection
        await asyncio.wait_for(asyncio.gather(first, patient()), 30)

    run(scenario())
    assert done.index("patient") <= 1, done

"""The search's lookups on PostgreSQL, awaited on the serving loop.

`PreparedLookups` runs a PostgreSQL lookup on a thread, because it waits on the network.
Under load that hand-off cost more than the lookup: the future and the wake-up of the
loop, and then the lookup thread and the serving thread taking the interpreter's lock from
each other at every step of the driver, about as much CPU again as the rest of a search.
Here the same statements (compiled once, with the same bind and result processors) run on
psycopg's asyncio connections, awaited by the search itself: no thread, and the loop
serves other requests while the database answers. The lookups themselves go straight to
the connection's libpq handle (`libpq_statement`), below psycopg's cursor, and those
waiting when a connection comes free go to the server together, a few at a time
(`lookup_batch`).

A few connections are held for the process, made as the engine makes its own: the same
address and adapters, UTC sessions, the public role taken on connect unless the address
logs in as it, autocommit (each statement its own snapshot, never idle in a transaction).
When all are busy, lookups wait their turn, first come first served, and go in the next
batch. One the server closed is replaced, and the lookups it had not answered are tried
once more on a new one. Errors are raised as SQLAlchemy's,
with parameters hidden, and the engine's cursor-execute listeners hear of every statement.
"""

import asyncio
import contextlib
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from sqlalchemy import Engine, event
from sqlalchemy.exc import DBAPIError

from safevine.store.engine import POSTGRES_SESSION
from safevine.store.public.connection import SET_PUBLIC_ROLE, switches_role
from safevine.store.public.libpq_statement import LibpqStatement, PreparedOn
from safevine.store.public.lookup import BY_REFERENCE, SEARCHES, PublicPerson
from safevine.store.public.lookup_batch import Lookup, Outcome, send_batch
from safevine.store.public.prepared_lookup import PreparedStatement
from safevine.store.public.waiting_lookups import AwaitedSearches, take_batch

# Statements kept in libpq's form, and so prepared on each connection, at most.
_DIRECT_KEPT = 64
# Connections a process holds for searches: a search holds one for a round trip, so a few
# keep the database busy while the loop serves the rest.
LOOKUP_CONNECTIONS = 4


class AwaitedLookups(AwaitedSearches):
    """`lookup.by_a_number` and `lookup.by_name` on PostgreSQL, as coroutines."""

    # Each lookup waits on the network: awaited, never called as a blocking function.
    blocks = True

    def __init__(self, engine: Engine, connections: int = LOOKUP_CONNECTIONS) -> None:
        if engine.dialect.name != "postgresql":
            raise ValueError("awaited lookups are for PostgreSQL")
        self._engine = engine
        self._size = connections
        searches = SEARCHES["postgresql"]
        self._by_a_number = PreparedStatement(searches.by_a_number, engine.dialect)
        self._by_name = PreparedStatement(searches.by_name, engine.dialect)
        self._by_reference = PreparedStatement(BY_REFERENCE, engine.dialect)
        arguments, options = engine.dialect.create_connect_args(engine.url)
        self._arguments = list(arguments)
        self._options = {**POSTGRES_SESSION, **options}
        self._role = switches_role(engine)
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        # Each open connection and the generation it was opened in: `close()` starts a
        # new one, and a connection of an earlier one is closed when given back.
        self._opened: dict[psycopg.AsyncConnection[Any], int] = {}
        # A cursor per connection, for what `libpq_statement` does not take (a value of
        # another kind, a statement past `_DIRECT_KEPT`): a new one each time cost about a
        # tenth of a lookup's CPU.
        self._cursors: dict[psycopg.AsyncConnection[Any], psycopg.AsyncCursor[Any]] = {}
        # Lookups go straight to libpq (`libpq_statement`): each statement in its form,
        # and what each connection has prepared.
        self._statements: dict[str, LibpqStatement] = {}
        self._prepared: dict[psycopg.AsyncConnection[Any], PreparedOn] = {}
        self._generation = 0
        self._opening = 0
        # Searches waiting for a connection, first come first served: each is handed the
        # connection given back (or None: go and open one), so a search arriving later
        # never takes it first, which had left the unlucky waiting for a second and more.
        self._waiting: deque[asyncio.Future[psycopg.AsyncConnection[Any] | None]] = deque()
        # Lookups waiting to be sent, the task that sends them as connections come free,
        # and the batches on their way (`lookup_batch`).
        self._pending: deque[Lookup] = deque()
        self._dispatcher: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Task[None]] = set()
        event.listen(engine, "engine_disposed", self._on_dispose)

    async def by_reference(self, refs: Sequence[str]) -> list[PublicPerson]:
        """Public persons among these references, in no particular order."""
        if not refs:
            return []
        rows = await self._run(self._by_reference, {"refs": list(refs)})
        return [PublicPerson(*row) for row in rows]

    @property
    def connections(self) -> int:
        """Connections open now (idle or in use)."""
        return len(self._opened)

    def close(self) -> None:
        """Close every idle connection now, and each busy one as it is given back (the
        engine's `dispose()` calls this); a later search opens new ones."""
        self._generation += 1
        idle, self._idle = self._idle, []
        for connection in idle:
            self._discard(connection)

    def _on_dispose(self, _engine: Engine) -> None:
        self.close()

    async def _run(
        self, statement: PreparedStatement, values: Mapping[str, Any]
    ) -> list[tuple[Any, ...]]:
        sql, parameters = statement.bind(values)
        direct = self._direct(sql)
        libpq_values = (
            direct.values(parameters)
            if direct is not None and isinstance(parameters, dict)
            else None
        )
        if direct is None or libpq_values is None:
            return await self._run_on_cursor(statement, sql, parameters)
        dispatch = self._engine.dispatch
        if dispatch.before_cursor_execute:
            dispatch.before_cursor_execute(None, None, sql, parameters, None, False)
        lookup = Lookup(direct, libpq_values, sql, parameters)
        self._submit(lookup)
        try:
            fetched = await lookup.answer
        except psycopg.Error as error:
            raise statement.error(sql, parameters, error) from error
        if dispatch.after_cursor_execute:
            dispatch.after_cursor_execute(None, None, sql, parameters, None, False)
        return statement.convert(fetched)

    def _submit(self, lookup: Lookup, first: bool = False) -> None:
        """Queue `lookup` for the next batch (`first`: ahead of the rest, as one sent
        again has waited longest)."""
        if first:
            self._pending.appendleft(lookup)
        else:
            self._pending.append(lookup)
        if self._dispatcher is None:
            self._dispatcher = asyncio.get_running_loop().create_task(self._dispatch())

    async def _dispatch(self) -> None:
        """Send what is waiting, `BATCH_MAX` at a time, on each connection that comes free
        (a second batch on a second connection while the first is answered)."""
        try:
            # The searches started in this turn of the loop join the first batch.
            await asyncio.sleep(0)
            while self._pending:
                try:
                    connection = await self._take()
                except Exception as error:
                    # No connection can be made: every search waiting gets the error.
                    pending, self._pending = list(self._pending), deque()
                    for lookup in pending:
                        lookup.settle(error=error)
                    return
                batch = take_batch(self._pending)
                if batch:
                    task = asyncio.get_running_loop().create_task(self._send(connection, batch))
                    self._sending.add(task)
                    task.add_done_callback(self._sending.discard)
                else:
                    self._give(connection)
        finally:
            self._dispatcher = None

    async def _send(self, connection: psycopg.AsyncConnection[Any], batch: list[Lookup]) -> None:
        prepared = self._prepared[connection]
        try:
            if prepared.utf8:
                outcome = await send_batch(connection, batch, prepared)
            else:
                outcome = await self._each_on_cursor(connection, batch)
        except psycopg.Error as error:
            # The connection failed (the server closed it since the last search: a
            # restart, a terminated backend): the lookups not answered go once more on
            # a new one; a second failure is the answer.
            self._give(connection, broken=True)
            for lookup in reversed(batch):
                if lookup.answer.done():
                    continue
                if lookup.again:
                    lookup.settle(error=error)
                else:
                    lookup.again = True
                    self._submit(lookup, first=True)
            return
        except Exception as error:
            # Not the database's (rows its loaders could not read): each search not yet
            # answered fails with it, and the connection, its answers unread, goes.
            self._give(connection, broken=True)
            for lookup in batch:
                lookup.settle(error=error)
            return
        except BaseException:
            # Cancelled mid-batch (the loop is closing): the connection may be in the
            # middle of an answer, so it is not used again.
            self._give(connection, broken=True)
            for lookup in batch:
                lookup.answer.cancel()
            raise
        self._give(connection)
        outcome.give()
        for lookup in reversed(outcome.resend):
            self._submit(lookup, first=True)

    async def _each_on_cursor(
        self, connection: psycopg.AsyncConnection[Any], batch: list[Lookup]
    ) -> Outcome:
        """A connection in another encoding than UTF-8 takes each lookup by its cursor."""
        cursor = self._cursors[connection]
        outcome = Outcome()
        for lookup in batch:
            try:
                await cursor.execute(lookup.sql, lookup.parameters, prepare=True)
                outcome.answers.append((lookup, await cursor.fetchall()))
            except psycopg.Error as error:
                if connection.broken or connection.closed:
                    raise
                outcome.answers.append((lookup, error))
        return outcome

    async def _run_on_cursor(
        self, statement: PreparedStatement, sql: str, parameters: Any
    ) -> list[tuple[Any, ...]]:
        """A statement libpq is not given (a value of another kind, a statement past
        `_DIRECT_KEPT`) by the connection's cursor, on a connection of its own."""
        dispatch = self._engine.dispatch
        if dispatch.before_cursor_execute:
            dispatch.before_cursor_execute(None, None, sql, parameters, None, False)
        for attempt in range(2):
            connection = await self._take()
            cursor = self._cursors[connection]
            try:
                await cursor.execute(sql, parameters, prepare=True)
                fetched = await cursor.fetchall()
            except psycopg.Error as error:
                broken = connection.broken or connection.closed
                self._give(connection, broken=broken)
                # The server closed it since the last search: once more on a new one.
                if broken and attempt == 0:
                    continue
                raise statement.error(sql, parameters, error) from error
            except BaseException:
                # Cancelled mid-statement (the client went away): the connection may be in
                # the middle of an answer, so it is not used again.
                self._give(connection, broken=True)
                raise
            self._give(connection)
            if dispatch.after_cursor_execute:
                dispatch.after_cursor_execute(None, cursor, sql, parameters, None, False)
            return statement.convert(fetched)
        raise AssertionError("unreachable")

    def _direct(self, sql: str) -> LibpqStatement | None:
        """The statement in libpq's form; None for a new one once `_DIRECT_KEPT` are kept
        (each would stay prepared on every connection: a confirmation by reference has a
        statement for each number of references)."""
        direct = self._statements.get(sql)
        if direct is None and len(self._statements) < _DIRECT_KEPT:
            direct = self._statements[sql] = LibpqStatement(sql)
        return direct

    async def _take(self) -> psycopg.AsyncConnection[Any]:
        woken = False
        while True:
            # Behind those already waiting, unless this one was woken to go ahead.
            if woken or not self._waiting:
                while self._idle:
                    connection = self._idle.pop()
                    if not (connection.broken or connection.closed):
                        return connection
                    self._discard(connection)
                if len(self._opened) + self._opening < self._size:
                    return await self._connect()
            waiter: asyncio.Future[psycopg.AsyncConnection[Any] | None]
            waiter = asyncio.get_running_loop().create_future()
            self._waiting.append(waiter)
            try:
                handed = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    # Handed a connection, or woken, then cancelled: the next one instead.
                    given = waiter.result()
                    if given is None:
                        self._wake()
                    else:
                        self._give(given)
                elif waiter in self._waiting:
                    self._waiting.remove(waiter)
                raise
            if handed is not None:
                if not (handed.broken or handed.closed):
                    return handed
                self._discard(handed)
            woken = True

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        # Counted as open from the start, so no other search opens one beyond the number
        # while this one connects and takes its role.
        self._opening += 1
        try:
            connection = await psycopg.AsyncConnection.connect(
                *self._arguments, autocommit=True, **self._options
            )
            try:
                if self._role:
                    await connection.execute(SET_PUBLIC_ROLE)
            except BaseException:
                connection.pgconn.finish()
                raise
        except BaseException as error:
            # A search waiting for a connection would otherwise wait for one that never
            # comes: it tries for itself, and gets its own answer (an error, while the
            # server is down).
            self._wake()
            if isinstance(error, psycopg.Error):
                raise DBAPIError.instance(
                    None, None, error, psycopg.Error, hide_parameters=True
                ) from error
            raise
        finally:
            self._opening -= 1
        self._opened[connection] = self._generation
        self._cursors[connection] = connection.cursor()
        self._prepared[connection] = PreparedOn(connection)
        return connection

    def _give(self, connection: psycopg.AsyncConnection[Any], broken: bool = False) -> None:
        if broken or self._opened.get(connection) != self._generation:
            self._discard(connection)
            self._wake()  # the first waiting may open one in its place
        elif not self._hand(connection):
            self._idle.append(connection)

    def _wake(self) -> None:
        """The first search waiting goes ahead, to open a connection for itself."""
        self._hand(None)

    def _hand(self, connection: psycopg.AsyncConnection[Any] | None) -> bool:
        """Give the first search still waiting `connection` (None: go and open one);
        False if none waits."""
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return True
        return False

    def _discard(self, connection: psycopg.AsyncConnection[Any]) -> None:
        self._opened.pop(connection, None)
        self._cursors.pop(connection, None)
        prepared = self._prepared.pop(connection, None)
        if prepared is not None:
            prepared.readiness.forget()
        # Closing the socket needs no loop: the connection is never awaited again.
        with contextlib.suppress(Exception):
            connection.pgconn.finish()

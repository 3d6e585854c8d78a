"""A search's statement run on the libpq connection under a psycopg `AsyncConnection`.

Through psycopg's cursor, a search's one statement cost the web process about as much CPU
as the rest of the search together (converting the query, the cursor's prepared-statement
bookkeeping and result machinery, a timer at every wait). The lookups are a few fixed
statements with text parameters, so each is prepared once per connection under a name of
its own, then sent and read through `psycopg.pq`, and its rows loaded by psycopg's own
`Transformer` (the loaders the cursor would use): the same rows, with little Python.
A statement with a parameter of another kind stays with the cursor.
"""

import asyncio
import itertools
import re
from collections.abc import Mapping
from datetime import date
from typing import Any

import psycopg
from psycopg import pq
from psycopg.adapt import Transformer

# psycopg's placeholders as SQLAlchemy compiles them; libpq numbers its own.
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")
_NAMES = itertools.count()


class LibpqStatement:
    """One statement (as psycopg takes it, with `%(name)s` placeholders) in libpq's form."""

    def __init__(self, sql: str) -> None:
        order: list[str] = []

        def number(found: re.Match[str]) -> str:
            order.append(found.group(1))
            return f"${len(order)}"

        self.command = _PLACEHOLDER.sub(number, sql).replace("%%", "%").encode()
        self.order = order
        self.name = f"safevine_lookup_{next(_NAMES)}".encode()

    def values(self, parameters: Mapping[str, Any]) -> list[bytes | None] | None:
        """The parameters as libpq's text values, in order; None if one is not text, a
        date or NULL, or holds a NUL (libpq would cut it there: the cursor refuses it)."""
        values: list[bytes | None] = []
        for name in self.order:
            value = parameters[name]
            if value is None:
                values.append(None)
                continue
            if value.__class__ is str:
                text = value
            elif value.__class__ is date:
                text = value.isoformat()
            else:
                return None
            if "\0" in text:
                return None
            values.append(text.encode())
        return values


class PreparedOn:
    """What one connection has prepared, and the Transformer that loads its rows."""

    def __init__(self, connection: psycopg.AsyncConnection[Any]) -> None:
        self.names: set[bytes] = set()
        self.transformer = Transformer(connection)
        # Values are sent as UTF-8; a connection in another encoding keeps the cursor.
        # Read once: psycopg builds the answer anew at each asking.
        self.utf8 = connection.info.encoding == "utf-8"


async def fetch(
    connection: psycopg.AsyncConnection[Any],
    statement: LibpqStatement,
    values: list[bytes | None],
    prepared: PreparedOn,
) -> list[tuple[Any, ...]]:
    """The statement's rows on `connection` (idle, in autocommit, used by nothing else
    meanwhile). Raises psycopg's errors, as its cursor would."""
    pgconn = connection.pgconn
    for attempt in range(2):
        if statement.name not in prepared.names:
            pgconn.send_prepare(statement.name, statement.command)
            _check(await _result(pgconn), pq.ExecStatus.COMMAND_OK, connection)
            prepared.names.add(statement.name)
        pgconn.send_query_prepared(statement.name, values)
        result = await _result(pgconn)
        if result.status == pq.ExecStatus.TUPLES_OK:
            prepared.transformer.set_pgresult(result)
            return prepared.transformer.load_rows(0, result.ntuples, tuple)
        error = psycopg.errors.error_from_result(result, connection.info.encoding)
        # Prepared statements gone from the session (DEALLOCATE ALL by a pooler, say):
        # prepared again, once.
        if isinstance(error, psycopg.errors.InvalidSqlStatementName) and attempt == 0:
            prepared.names.clear()
            continue
        raise error
    raise AssertionError("unreachable")


def _check(
    result: pq.abc.PGresult, wanted: pq.ExecStatus, connection: psycopg.AsyncConnection[Any]
) -> None:
    if result.status != wanted:
        raise psycopg.errors.error_from_result(result, connection.info.encoding)


async def _result(pgconn: pq.abc.PGconn) -> pq.abc.PGresult:
    """The result of the command just sent, once the server has answered it whole."""
    loop = asyncio.get_running_loop()
    socket = pgconn.socket
    while pgconn.flush():
        await _ready(loop, socket, write=True)
    while True:
        pgconn.consume_input()
        if not pgconn.is_busy():
            break
        await _ready(loop, socket)
    last = None
    while (result := pgconn.get_result()) is not None:
        last = result
    if last is None:
        raise psycopg.OperationalError("the server sent no result")
    return last


async def _ready(loop: asyncio.AbstractEventLoop, socket: int, write: bool = False) -> None:
    done: asyncio.Future[None] = loop.create_future()
    if write:
        loop.add_writer(socket, _set, done)
    else:
        loop.add_reader(socket, _set, done)
    try:
        await done
    finally:
        if write:
            loop.remove_writer(socket)
        else:
            loop.remove_reader(socket)


def _set(done: asyncio.Future[None]) -> None:
    if not done.done():
        done.set_result(None)

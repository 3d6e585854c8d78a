"""A search's statement in the form of the libpq connection under a psycopg
`AsyncConnection`, and what each such connection keeps for it.

Through psycopg's cursor, a search's one statement cost the web process about as much CPU
as the rest of the search together (converting the query, the cursor's prepared-statement
bookkeeping and result machinery, a timer at every wait). The lookups are a few fixed
statements with text parameters, so each is prepared once per connection under a name of
its own, then sent and read through `psycopg.pq` (`lookup_batch`), and its rows loaded
by psycopg's own `Transformer` (the loaders the cursor would use): the same rows, with
little Python.
A statement with a parameter of another kind stays with the cursor.
"""

import asyncio
import contextlib
import itertools
import os
import re
import weakref
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


class Readiness:
    """Wakes the lookup waiting for an answer on one connection: a reader on its socket,
    registered once and kept while lookups use the connection: registering one and taking
    it off again at every wait was a good part of a lookup's CPU (uvloop makes and frees a
    poll handle each time; BENCHMARKS.md, search).

    The reader watches a duplicate of the socket's descriptor, so psycopg's own waits on
    the socket (its cursor, for what libpq is not given) never take it off, and it never
    reads from the socket: when it fires with no lookup waiting (what the server sent
    unasked, the connection's end, or psycopg's answers), it takes itself off until the
    next lookup waits. `forget` closes the duplicate, as does losing the last reference."""

    def __init__(self, pgconn: pq.abc.PGconn) -> None:
        self._pgconn = pgconn
        self._loop: asyncio.AbstractEventLoop | None = None
        self._socket = -1
        self._closed = False
        self._waiter: asyncio.Future[None] | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None

    async def readable(self) -> None:
        """Until the socket has something to read (or its end)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._watch(loop)
        waiter = self._waiter = loop.create_future()
        try:
            await waiter
        finally:
            self._waiter = None

    def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        self._unwatch()
        if self._socket < 0:
            if self._closed:
                raise psycopg.OperationalError("the connection's lookups were closed")
            self._socket = os.dup(self._pgconn.socket)
            self._finalizer = weakref.finalize(self, os.close, self._socket)
        loop.add_reader(self._socket, self._on_readable)
        self._loop = loop

    def _unwatch(self) -> None:
        if self._loop is not None:
            # A loop already closed has let go of its readers.
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self._socket)
            self._loop = None

    def _on_readable(self) -> None:
        waiter = self._waiter
        if waiter is None:
            self._unwatch()  # nothing waits: off until something does
        elif not waiter.done():
            waiter.set_result(None)

    def forget(self) -> None:
        """Stop watching the socket and close the duplicate, before the connection closes."""
        self._unwatch()
        self._closed = True
        if self._finalizer is not None:
            self._finalizer()  # closes the duplicate, once
            self._socket = -1


class PreparedOn:
    """What one connection has prepared, the Transformer that loads its rows, and what
    wakes a lookup waiting on it."""

    def __init__(self, connection: psycopg.AsyncConnection[Any]) -> None:
        self.names: set[bytes] = set()
        self.transformer = Transformer(connection)
        self.readiness = Readiness(connection.pgconn)
        # Values are sent as UTF-8; a connection in another encoding keeps the cursor.
        # Read once: psycopg builds the answer anew at each asking.
        self.utf8 = connection.info.encoding == "utf-8"


async def writable(socket: int) -> None:
    """Until the socket takes more of a command too large for its buffer (rare)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    loop.add_writer(socket, _set, done)
    try:
        await done
    finally:
        loop.remove_writer(socket)


def _set(done: asyncio.Future[None]) -> None:
    if not done.done():
        done.set_result(None)

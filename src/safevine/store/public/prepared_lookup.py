"""The public search's lookups, compiled once and run on DB-API connections held open.

`lookup.py`'s statements through a SQLAlchemy `Connection` cost about 45 µs each in the
engine's execution machinery, plus a pool checkout per search, and on PostgreSQL a
pre-ping, a BEGIN and a ROLLBACK (a round trip each): several times the lookup itself.
Here the same statements are compiled once for the engine's dialect, with the same bind
and result processors, and run on a cursor of a connection that stays open, one per
thread. On PostgreSQL it is in autocommit: in READ COMMITTED every statement takes its
own snapshot anyway, so a search sees what it saw before, with one round trip a statement.

The connections are the public engine's (its connect hooks set the public role on
PostgreSQL and the authorizer on SQLite), checked out for as long as the engine lives;
`dispose()` on the engine closes them too. Errors are raised as SQLAlchemy's, with
parameters hidden, and the engine's cursor-execute listeners hear of every statement.
"""

import contextlib
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import Any

from sqlalchemy import Connection, Engine, Select, event
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, StatementError

from safevine.store.public.lookup import SEARCHES, PublicPerson, name_values

Processor = Callable[[Any], Any] | None
# Distinct numbers of references a name search has expanded `IN (...)` for; beyond it a
# shape is built for each search and not kept.
_SHAPES_KEPT = 64


class _Shape:
    """A statement as the driver takes it, for one size of each expanding parameter."""

    def __init__(
        self,
        sql: str,
        order: Sequence[str] | None,
        processors: Mapping[str, Processor],
        expansion: Mapping[str, list[str]],
    ) -> None:
        self.sql = sql
        self.order = order
        self.processors = {name: p for name, p in processors.items() if p is not None}
        self.expansion = expansion
        # Positional parameters with nothing to expand (SQLite's searches): each name in
        # the driver's order with its processor, so binding is one pass.
        self.positional = (
            [(name, self.processors.get(name)) for name in order]
            if order is not None and not expansion
            else None
        )

    def parameters(self, values: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        if self.positional is not None:
            return tuple(
                [values[name] if p is None else p(values[name]) for name, p in self.positional]
            )
        flat: dict[str, Any] = {}
        for name, value in values.items():
            names = self.expansion.get(name)
            if names is None:
                flat[name] = value
            else:
                flat.update(zip(names, value, strict=True))
        for name, process in self.processors.items():
            flat[name] = process(flat[name])
        return flat if self.order is None else tuple(flat[name] for name in self.order)


class PreparedStatement:
    """One `select` compiled for one dialect: SQL, parameter order, bind and result
    processors, as a SQLAlchemy `Connection.execute` would use them."""

    def __init__(self, statement: Select[Any], dialect: Dialect) -> None:
        self._dialect = dialect
        self._compiled = statement.compile(dialect=dialect)
        self._binds: dict[str, Processor] = {
            name: bind.type.dialect_impl(dialect).bind_processor(dialect)
            for name, bind in self._compiled.binds.items()
        }
        self._expanding = frozenset(
            name for name, bind in self._compiled.binds.items() if bind.expanding
        )
        self._sorted_expanding = sorted(self._expanding)
        results: list[Processor] = [
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in statement.selected_columns
        ]
        # The columns a result processor converts, by position.
        self._converted = [(i, p) for i, p in enumerate(results) if p is not None]
        self._shapes: dict[tuple[int, ...], _Shape] = {}

    def _shape(self, values: Mapping[str, Any]) -> _Shape:
        key = tuple([len(values[name]) for name in self._sorted_expanding])
        shape = self._shapes.get(key)
        if shape is None:
            # Placeholders of the right sizes: only the expanded names and SQL are kept.
            state = self._compiled.construct_expanded_state(
                {n: (list(v) if n in self._expanding else v) for n, v in values.items()}
            )
            processors = {n: p for n, p in self._binds.items() if n not in self._expanding}
            processors.update(state.processors)
            shape = _Shape(
                state.statement, state.positiontup, processors, state.parameter_expansion
            )
            if len(self._shapes) < _SHAPES_KEPT:
                self._shapes[key] = shape
        return shape

    def bind(self, values: Mapping[str, Any]) -> tuple[str, tuple[Any, ...] | dict[str, Any]]:
        """The SQL and the driver's parameters for these values."""
        shape = self._shape(values)
        return shape.sql, shape.parameters(values)

    def convert(self, fetched: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
        """The driver's rows as SQLAlchemy's result processors make them."""
        converted = self._converted
        if not converted:
            return [tuple(row) for row in fetched]
        rows = []
        for row in fetched:
            values = list(row)
            for i, process in converted:
                values[i] = process(values[i])
            rows.append(tuple(values))
        return rows

    def error(
        self, sql: str, parameters: tuple[Any, ...] | dict[str, Any], error: Exception
    ) -> StatementError:
        """The driver's error as SQLAlchemy raises it (a `DBAPIError`), parameters hidden."""
        return DBAPIError.instance(
            sql,
            parameters,
            error,
            self._dialect.loaded_dbapi.Error,
            hide_parameters=True,
            dialect=self._dialect,
        )

    def rows(self, connection: Connection, values: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Run on `connection`'s DB-API connection; its engine's cursor-execute listeners
        hear of it as of any statement (with no execution context)."""
        sql, parameters = self.bind(values)
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            dispatch = connection.dispatch
            if dispatch.before_cursor_execute:
                dispatch.before_cursor_execute(connection, cursor, sql, parameters, None, False)
            cursor.execute(sql, parameters)
            fetched = cursor.fetchall()
            if dispatch.after_cursor_execute:
                dispatch.after_cursor_execute(connection, cursor, sql, parameters, None, False)
        except self._dialect.loaded_dbapi.Error as error:
            raise self.error(sql, parameters, error) from error
        finally:
            cursor.close()
        return self.convert(fetched)


class PreparedLookups:
    """`lookup.by_a_number` and `lookup.by_name` on held connections, one per thread.

    `blocks` is False on SQLite: a lookup there is a few tens of microseconds on the
    local file, and WAL readers never wait for writers, so it can run on the serving
    thread; on PostgreSQL every statement is a network round trip.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        dialect = engine.dialect
        self.blocks = dialect.name != "sqlite"
        searches = SEARCHES[dialect.name]
        self._by_a_number = PreparedStatement(searches.by_a_number, dialect)
        self._by_name = PreparedStatement(searches.by_name, dialect)
        self._local = threading.local()
        self._held: list[Connection] = []
        self._lock = threading.Lock()
        event.listen(engine, "engine_disposed", self._on_dispose)

    def by_a_number(self, a_number: str, country: str) -> list[PublicPerson]:
        """Public persons with this canonical A-number and country of birth (zero or one)."""
        rows = self._run(self._by_a_number, {"a_number": a_number, "country": country})
        return [PublicPerson(*row) for row in rows]

    def by_name(
        self,
        given_key: str,
        family_key: str,
        country: str,
        date_of_birth: date | None = None,
    ) -> list[PublicPerson]:
        """Public persons known by exactly this folded name (or alias) and country."""
        values = name_values(given_key, family_key, country, date_of_birth)
        return [PublicPerson(*row) for row in self._run(self._by_name, values)]

    def close(self) -> None:
        """Close every held connection (the engine's `dispose()` calls this)."""
        with self._lock:
            held, self._held = self._held, []
        self._local = threading.local()
        for connection in held:
            _close_quietly(connection)

    def _on_dispose(self, _engine: Engine) -> None:
        self.close()

    def _run(
        self, statement: PreparedStatement, values: Mapping[str, Any]
    ) -> list[tuple[Any, ...]]:
        connection = self._connection()
        try:
            return statement.rows(connection, values)
        except DBAPIError:
            if not _broken(connection):
                raise
        # The server closed the connection since the last search (a restart, a
        # terminated backend): what the pool's pre-ping would have caught. Once more on a
        # new one; a second failure is the answer.
        self._drop(connection)
        return statement.rows(self._connection(), values)

    def _connection(self) -> Connection:
        held: Connection | None = getattr(self._local, "connection", None)
        if held is not None and not _broken(held):
            return held
        if held is not None:
            self._drop(held)
        connection = self._engine.connect()
        if self.blocks:
            # Never in a transaction, so never idle in one between searches.
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        with self._lock:
            self._held.append(connection)
        self._local.connection = connection
        return connection

    def _drop(self, connection: Connection) -> None:
        with self._lock:
            if connection in self._held:
                self._held.remove(connection)
        if getattr(self._local, "connection", None) is connection:
            self._local.connection = None
        _close_quietly(connection)


def _broken(connection: Connection) -> bool:
    if connection.closed or connection.invalidated:
        return True
    # psycopg says when the server went away; a sqlite3 connection has no such state.
    dbapi = connection.connection.dbapi_connection
    return bool(getattr(dbapi, "closed", False) or getattr(dbapi, "broken", False))


def _close_quietly(connection: Connection) -> None:
    """Close the DB-API connection itself: the pool it came from may be disposed of
    already, and one that cannot close is gone anyway."""
    with contextlib.suppress(Exception):
        connection.invalidate()
    with contextlib.suppress(Exception):
        connection.close()

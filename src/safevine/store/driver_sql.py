"""Statements handed straight to the database driver, for the hot path of event ingest.

SQLAlchemy's Core costs more per row than the database does for the statements a feed
sends thousands of rows through: it builds a parameter dict for each row and runs each
column's bind processor. Here a statement is written once per dialect, the rows are
tuples already in the driver's form (`Driver.when` for moments), and a long list of keys
goes as one parameter: an array on PostgreSQL (`column = ANY(?::text[])`, as written), a
JSON array read by `json_each` on SQLite (the same text rewritten to
`column IN (SELECT value FROM json_each(?))`). The statements run on the SQLAlchemy
connection's own DB-API connection, in its transaction.

PostgreSQL's arrays go in the binary format: psycopg writes an array as text in Python,
quoting element by element and formatting each moment, which cost a feed more client time
than all its other statements (BENCHMARKS.md, event ingest). Arrays of integers, text and
moments are built whole (`binary_arrays`); psycopg's own binary list dumper, a Python
call an element, still takes any other list.

Only constant SQL is written here; every value is bound.
"""

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import Connection, Dialect, String, Table
from sqlalchemy.exc import DBAPIError

from safevine.store import binary_arrays
from safevine.store.binary_arrays import column_array
from safevine.store.types import _sqlite_text

Row = tuple[Any, ...]

_ANY = re.compile(r"= ANY\(\?::\w+\[\]\)")


class Driver:
    """The DB-API cursor of `connection`, and how its dialect writes what varies."""

    def __init__(self, connection: Connection) -> None:
        self.dialect = connection.dialect
        self.postgresql = connection.dialect.name == "postgresql"
        raw = connection.connection.driver_connection
        if self.postgresql:
            binary_arrays.register(raw)  # type: ignore[arg-type]
        self.cursor = raw.cursor()  # type: ignore[union-attr]

    def sql(self, statement: str) -> str:
        """`statement`, written with `?` placeholders (and no literal `%`) and PostgreSQL's
        `= ANY(?::type[])`, spaced so, for a list of keys, in the driver's own style."""
        if self.postgresql:
            return statement.replace("ANY(?::", "ANY(%b::").replace("?", "%s")
        return _ANY.sub("IN (SELECT value FROM json_each(?))", statement)

    def when(self, moment: datetime | None) -> Any:
        """A moment as the driver binds it for a UTCDateTime column (see `store.types`);
        a naive datetime is refused on both databases, as that type refuses it."""
        if moment is None:
            return None
        if not self.postgresql:
            return _sqlite_text(moment)
        if moment.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return moment

    def moment(self, value: Any) -> datetime | None:
        """A UTCDateTime column's value as read through the driver, as an aware datetime."""
        if value is None:
            return None
        if isinstance(value, str):
            return datetime.fromisoformat(value).replace(tzinfo=UTC)
        assert isinstance(value, datetime)
        return value.astimezone(UTC)

    def keys(self, values: Iterable[Any]) -> Any:
        """The parameter for a `= ANY(?::type[])`: a list of keys."""
        listed = list(values)
        return binary_arrays.key_array(listed) if self.postgresql else json.dumps(listed)

    def rows(self, statement: str, parameters: Sequence[Any] = ()) -> list[Row]:
        sql = self.sql(statement)
        with self._errors(sql):
            self.cursor.execute(sql, tuple(parameters))
            return [tuple(row) for row in self.cursor.fetchall()]

    def run(self, statement: str, parameters: Sequence[Any] = ()) -> int:
        """The statement's row count (-1 in `pipelined`, where it is not known yet)."""
        sql = self.sql(statement)
        with self._errors(sql):
            self.cursor.execute(sql, tuple(parameters))
        return int(self.cursor.rowcount)

    @contextmanager
    def _errors(self, sql: str) -> Iterator[None]:
        """The driver's errors as SQLAlchemy raises them (a `DBAPIError` of the matching
        kind: `IntegrityError`, `DataError`...), parameters hidden, so that a value the
        database refuses is told from a failure of the database (`ingest.batch_run`)."""
        dbapi = self.dialect.loaded_dbapi
        try:
            yield
        except dbapi.Error as error:
            raise DBAPIError.instance(
                sql, None, error, dbapi.Error, hide_parameters=True, dialect=self.dialect
            ) from error

    @contextmanager
    def pipelined(self) -> Iterator[None]:
        """On PostgreSQL, the block's statements are sent without waiting for each to be
        done (psycopg's pipeline mode), so this process goes on with its own work while the
        server applies them; the block's end waits for them all, and raises the first error
        any of them met. Only this class's statements may run in the block (SQLAlchemy
        reads a statement's columns before its result has come). Elsewhere, no change."""
        if not self.postgresql:
            yield
            return
        dbapi = self.dialect.loaded_dbapi
        with self._errors("(pipelined statements)"), self.cursor.connection.pipeline() as sent:
            try:
                yield
            except BaseException:
                # What was sent is settled here, its errors dropped, before the block's own
                # failure leaves: ending the pipeline under that failure, psycopg would log
                # a refused write with its row's values.
                with suppress(dbapi.Error):
                    sent.sync()
                raise

    def new_ids(self, table: Table, count: int) -> list[int]:
        """`count` ids of `table`'s serial key, taken now (PostgreSQL only), so that rows
        can be written, and refer to each other, before the server has stored them."""
        assert self.postgresql, "SQLite takes the next rowid at the insert"
        # The sequence is named once (materialized): as an argument of `nextval` it was
        # looked up in the catalog again for every id, five times the cost of taking them.
        # Ascending, as the rows they go to are in arrival order.
        return sorted(
            int(pk)
            for (pk,) in self.rows(
                "WITH q AS MATERIALIZED (SELECT pg_get_serial_sequence(?, 'id')::regclass AS s) "
                "SELECT nextval(q.s) FROM q, generate_series(1, ?)",
                (table.name, count),
            )
        )

    def insert(self, table: Table, columns: Sequence[str], rows: list[Row]) -> None:
        """Insert `rows` (tuples in the order of `columns`). PostgreSQL gets each column as
        one array of its type (one statement, no per-row work in the driver); SQLite one
        executemany."""
        self._write(table, columns, rows, "")

    def upsert(self, table: Table, key: str, columns: Sequence[str], rows: list[Row]) -> None:
        """Insert `rows`, or set every other column on the row whose `key` they name. No
        two rows may name the same key (PostgreSQL refuses to update a row twice in one
        statement)."""
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c != key)
        self._write(table, columns, rows, f" ON CONFLICT ({key}) DO UPDATE SET {updates}")

    def _write(self, table: Table, columns: Sequence[str], rows: list[Row], conflict: str) -> None:
        if not rows:
            return
        into = f"INSERT INTO {table.name} ({', '.join(columns)})"
        if self.postgresql:
            types = _array_types(self.dialect, table, tuple(columns))
            arrays = ", ".join(f"%b::{t}[]" for t in types)
            sql = f"{into} SELECT * FROM unnest({arrays}){conflict}"
            with self._errors(sql):
                columns_given = zip(types, zip(*rows, strict=True), strict=True)
                self.cursor.execute(sql, [column_array(t, c) for t, c in columns_given])
            return
        marks = ", ".join("?" * len(columns))
        sql = f"{into} VALUES ({marks}){conflict}"
        with self._errors(sql):
            self.cursor.executemany(sql, rows)


@cache
def _array_types(dialect: Dialect, table: Table, columns: tuple[str, ...]) -> tuple[str, ...]:
    """Each column's PostgreSQL type, read from the table. Strings go as text: a cast to
    varchar(n) would cut a value that is too long, where the insert itself refuses it."""
    return tuple(
        "text" if isinstance(table.c[c].type, String) else table.c[c].type.compile(dialect=dialect)
        for c in columns
    )

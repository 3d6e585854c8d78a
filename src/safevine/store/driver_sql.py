"""Statements handed straight to the database driver, for the hot path of event ingest.

SQLAlchemy's Core costs more per row than the database does for the statements a feed
sends thousands of rows through: it builds a parameter dict for each row and runs each
column's bind processor. Here a statement is written once per dialect, the rows are
tuples already in the driver's form (`Driver.when` for moments), and a long list of keys
goes as one parameter: an array on PostgreSQL (`column = ANY(?::text[])`, as written),
a JSON array read by `json_each` on SQLite (the same text rewritten to
`column IN (SELECT value FROM json_each(?))`). The statements run on the SQLAlchemy
connection's own DB-API connection, in its transaction.

Only constant SQL is written here; every value is bound.
"""

import json
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from safevine.store.types import _sqlite_text

Row = tuple[Any, ...]

_ANY = re.compile(r"= ANY\(\?::\w+\[\]\)")


class Driver:
    """The DB-API cursor of `connection`, and how its dialect writes what varies."""

    def __init__(self, connection: Connection) -> None:
        self.postgresql = connection.dialect.name == "postgresql"
        self.cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]

    def sql(self, statement: str) -> str:
        """`statement`, written with `?` placeholders (and no literal `%`) and PostgreSQL's
        `= ANY(?::type[])`, spaced so, for a list of keys, in the driver's own style."""
        if self.postgresql:
            return statement.replace("?", "%s")
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
        return listed if self.postgresql else json.dumps(listed)

    def rows(self, statement: str, parameters: Sequence[Any] = ()) -> list[Row]:
        self.cursor.execute(self.sql(statement), tuple(parameters))
        return [tuple(row) for row in self.cursor.fetchall()]

    def run(self, statement: str, parameters: Sequence[Any] = ()) -> int:
        self.cursor.execute(self.sql(statement), tuple(parameters))
        return int(self.cursor.rowcount)

    def insert(
        self, table: str, columns: Sequence[str], types: Sequence[str], rows: list[Row]
    ) -> None:
        """Insert `rows` (tuples in the order of `columns`). PostgreSQL gets each column as
        one array of its SQL type in `types` (one statement, no per-row work in the
        driver); SQLite one executemany."""
        if not rows:
            return
        names = ", ".join(columns)
        if self.postgresql:
            arrays = ", ".join(f"%s::{t}[]" for t in types)
            self.cursor.execute(
                f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays})",
                [list(column) for column in zip(*rows, strict=True)],
            )
            return
        marks = ", ".join("?" * len(columns))
        self.cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)

    def upsert(
        self,
        table: str,
        key: str,
        columns: Sequence[str],
        types: Sequence[str],
        rows: list[Row],
    ) -> None:
        """Insert `rows`, or set every other column on the row whose `key` they name. No
        two rows may name the same key (PostgreSQL refuses to update a row twice in one
        statement)."""
        if not rows:
            return
        names = ", ".join(columns)
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c != key)
        conflict = f"ON CONFLICT ({key}) DO UPDATE SET {updates}"
        if self.postgresql:
            arrays = ", ".join(f"%s::{t}[]" for t in types)
            self.cursor.execute(
                f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays}) {conflict}",
                [list(column) for column in zip(*rows, strict=True)],
            )
            return
        marks = ", ".join("?" * len(columns))
        # SQLite's parser needs a WHERE before ON CONFLICT only with a SELECT; VALUES is fine.
        self.cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks}) {conflict}", rows)

"""`column IN (values)`, written the way each database handles a long list best, and long
lists read a chunk at a time."""

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, any_, bindparam, select
from sqlalchemy.dialects.postgresql import ARRAY

# Stays well under SQLite's bound-parameter limit for IN (...) lists.
IN_CHUNK = 500


def chunked(values: Sequence[Any], size: int = IN_CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def member_of(
    connection: Connection, column: ColumnElement[Any], values: Sequence[Any]
) -> ColumnElement[bool]:
    """On PostgreSQL `column = ANY(:values)`, the list bound as one array; elsewhere IN.

    psycopg parses (in Python) every statement with over 50 parameters afresh, so a
    500-value IN list cost more on the client than the lookup did on the server; one
    array parameter keeps the statement short, cached and prepared.
    """
    if connection.dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(values)


def values_by_key(
    connection: Connection,
    key: ColumnElement[Any],
    value: ColumnElement[Any],
    keys: Sequence[Any],
) -> dict[Any, Any]:
    """`{key: value}` for the rows whose `key` is among `keys`, read a chunk at a time."""
    found: dict[Any, Any] = {}
    for part in chunked(keys):
        rows = connection.execute(select(key, value).where(member_of(connection, key, part)))
        found.update((k, v) for k, v in rows)  # a result has keys(): not taken as a mapping
    return found

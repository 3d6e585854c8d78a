"""Keeping SQLite's query planner off an index that looks as good as the right one and is not.

Without statistics (nothing here runs ANALYZE, and a new database has none to gather),
SQLite rates an equality on any indexed column alike. `state = 'sent' AND
provider_message_id = ?` can then be answered from the state index, reading every message
awaiting a receipt to find one: each receipt costs as much as all the texts in flight.
`unindexed(column)` makes a term unusable by an index on SQLite (a unary plus, as SQLite's
own planner checklist advises), so the selective term decides; PostgreSQL, whose planner
keeps statistics, gets the column as it is.
"""

from typing import Any, TypeVar

from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

T = TypeVar("T")


class _Unindexed(ColumnElement[T]):
    inherit_cache = True
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement)]  # noqa: RUF012 (SQLAlchemy reads it per class)

    def __init__(self, column: ColumnElement[T]) -> None:
        self.column = column
        self.type = column.type


@compiles(_Unindexed)
def _as_is(element: _Unindexed[Any], compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.column, **kw)


@compiles(_Unindexed, "sqlite")
def _with_plus(element: _Unindexed[Any], compiler: SQLCompiler, **kw: Any) -> str:
    return "+" + compiler.process(element.column, **kw)


def unindexed(column: ColumnElement[T]) -> ColumnElement[T]:
    """`column`, in a term no SQLite index answers."""
    return _Unindexed(column)

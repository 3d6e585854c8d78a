"""Many rows written with one statement: on PostgreSQL each column's values go as one
array (`unnest`), so a thousand rows cost one round trip and no per-row work in the
driver; elsewhere (SQLite, in process) an `executemany` is as fast.

The column names are the table's; values are bound, never formatted into SQL."""

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ARRAY, Connection, Table, bindparam, column, func, insert, select, update
from sqlalchemy.sql.selectable import TableValuedAlias

Row = Mapping[str, Any]


def update_rows(
    connection: Connection,
    table: Table,
    key: str,
    rows: Sequence[Row],
    fixed: Mapping[str, Any] | None = None,
) -> None:
    """Set each row's columns on the row whose `key` column matches its `key` value, and
    the `fixed` values (the same for every row) on all of them."""
    if not rows:
        return
    names = list(rows[0])
    same = dict(fixed or {})
    if connection.dialect.name == "postgresql":
        source = _arrays(table, names)
        statement = (
            update(table)
            .where(table.c[key] == source.c[key])
            .values({name: source.c[name] for name in names if name != key} | same)
        )
        connection.execute(statement, _columns(names, rows))
        return
    statement = (
        update(table)
        .where(table.c[key] == bindparam(f"row_{key}"))
        .values({name: bindparam(f"row_{name}") for name in names if name != key} | same)
    )
    connection.execute(statement, [{f"row_{n}": row[n] for n in names} for row in rows])


def insert_rows(connection: Connection, table: Table, rows: Sequence[Row]) -> None:
    """Insert the rows (all with the same columns)."""
    if not rows:
        return
    names = list(rows[0])
    if connection.dialect.name == "postgresql":
        source = _arrays(table, names)
        statement = insert(table).from_select(names, select(*[source.c[n] for n in names]))
        connection.execute(statement, _columns(names, rows))
        return
    connection.execute(insert(table), [dict(row) for row in rows])


def _arrays(table: Table, names: list[str]) -> TableValuedAlias:
    return (
        func.unnest(*[bindparam(f"rows_{n}", type_=ARRAY(table.c[n].type)) for n in names])
        .table_valued(*[column(n, table.c[n].type) for n in names])
        .render_derived(name="source")
    )


def _columns(names: list[str], rows: Sequence[Row]) -> dict[str, list[Any]]:
    return {f"rows_{n}": [row[n] for row in rows] for n in names}

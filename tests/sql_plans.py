"""Reading the database's plan of the statements a piece of code runs: proof that it is
answered from the index meant for it, on a database without statistics."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event


@contextmanager
def statements(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """Every statement the engine runs meanwhile, with its parameters."""
    seen: list[tuple[str, Any]] = []

    def note(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, many: bool
    ) -> None:
        if not statement.startswith("EXPLAIN"):
            # One row's parameters stand for all of an executemany's: the plan is the same.
            seen.append((statement, parameters[0] if many else parameters))

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def plans(engine: Engine, seen: list[tuple[str, Any]], *, no_seqscan: bool = False) -> list[str]:
    """The plan of each statement, one line per step: SQLite's EXPLAIN QUERY PLAN, or
    PostgreSQL's EXPLAIN (with its statistics as they are; `no_seqscan` prices out reading
    a whole table, which a test's tiny table would otherwise be read by)."""
    found: list[str] = []
    sqlite = engine.dialect.name == "sqlite"
    explain = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN "
    with engine.connect() as connection:
        if no_seqscan and not sqlite:
            connection.exec_driver_sql("SET enable_seqscan = off")
        for statement, parameters in seen:
            rows = connection.exec_driver_sql(
                explain + statement, _unknown(parameters) if sqlite else parameters
            )
            found.extend(str(row[-1]) for row in rows)
    return found


def _unknown(parameters: Any) -> Any:
    """Parameters as SQLite's planner sees them when it plans a statement: not yet bound.
    Explained with their values, a plan may use a partial index the value happens to
    match, which the statement itself, planned before its values are bound, cannot."""
    if isinstance(parameters, dict):
        return dict.fromkeys(parameters)
    return tuple(None for _ in parameters)

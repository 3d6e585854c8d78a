"""Engines for SQLite (WAL, one file) and PostgreSQL, set up so both behave alike."""

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

# UTC sessions so CURRENT_DATE in the public views is the same day Python uses.
POSTGRES_SESSION = {"options": "-c timezone=UTC"}


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for `url`; SQLite gets WAL, foreign keys and a busy timeout on every connection."""
    parsed = make_url(url)
    # A statement's parameters are A-numbers, names and contacts: never in an error's text.
    kwargs.setdefault("hide_parameters", True)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql":
        connect_args = {**POSTGRES_SESSION, **kwargs.pop("connect_args", {})}
        return create_engine(url, connect_args=connect_args, pool_pre_ping=True, **kwargs)
    raise ValueError(
        f"unsupported database {parsed.get_backend_name()!r}: use sqlite or postgresql"
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    # With WAL, NORMAL loses no committed transaction on a crash of the process.
    cursor.execute("PRAGMA synchronous=NORMAL")
    # What is deleted or overwritten is zeroed in the file, not left in free space for a
    # later reader of the file: a purge (`actions.purge`) must leave no trace. Every
    # connection, since a row rewritten by any of them leaves its old copy behind.
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()

"""Protection before delivery, on SQLite.

A dispatcher holds SQLite's single write lock while a batch is being sent (so a protection
waits for sends in flight, and nothing leaves after it commits). Between batches it lets
the lock go only for an instant, and SQLite's busy waiting is not fair: a protection could
wait behind batch after batch. So a protection first takes an exclusive lock on a file
beside the database, and a dispatcher takes that file's shared lock before each batch: the
protection goes in after the batch in flight, ahead of every later one.

PostgreSQL needs none of this: its row locks queue fairly.
"""

import fcntl
import os
from pathlib import Path

from sqlalchemy import Connection, Engine, event


def _lock_path(url_database: str | None) -> Path | None:
    if not url_database or url_database == ":memory:" or url_database.startswith("file:"):
        return None
    return Path(f"{url_database}.priority")


def claim_priority(connection: Connection) -> None:
    """Hold back dispatchers' next batches until this connection's transaction ends."""
    if connection.dialect.name != "sqlite" or connection.info.get("priority_fd") is not None:
        return
    path = _lock_path(connection.engine.url.database)
    if path is None:
        return
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    connection.info["priority_fd"] = fd

    def release(conn: Connection) -> None:
        held = conn.info.pop("priority_fd", None)
        if held is not None:
            fcntl.flock(held, fcntl.LOCK_UN)
            os.close(held)

    event.listen(connection, "commit", release, once=True)
    event.listen(connection, "rollback", release, once=True)


def yield_to_priority(engine: Engine) -> None:
    """Wait while a protection holds priority (SQLite); returns at once otherwise."""
    if engine.dialect.name != "sqlite":
        return
    path = _lock_path(engine.url.database)
    if path is None:
        return
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)

"""Protection before delivery, on SQLite.

A dispatcher holds SQLite's single write lock while a batch is being sent (so a protection
waits for sends in flight, and nothing leaves after it commits). Between batches it lets
the lock go only for an instant, and SQLite's busy waiting is not fair: a protection could
wait behind batch after batch. So a protection first takes an exclusive lock on a file
beside the database, and a dispatcher takes that file's shared lock before each batch: the
protection goes in after the batch in flight, ahead of every later one.

What a provider posts (a delivery receipt, a call's status, the keys pressed on a call, a
reply of STOP) is in the same position: it could wait out SQLite's busy timeout behind
batch after batch, be answered 500, and be lost, since providers do not post it twice.
It takes its turn the same way (`claim_turn`), on a file of its own: a protection never
waits for a report, so one that already holds the write lock when it claims priority
cannot wait for a report that is waiting for that lock. A report then waits for the batch
in flight on the dispatchers' own lock (`DISPATCH`, held for a whole batch) rather than in
SQLite's busy handler, which sleeps up to 100 ms between looks: the report goes in the
instant the batch has landed, and the next batch (held back meanwhile) after it. A
dispatcher never waits for priority or a turn while it holds that lock.

PostgreSQL needs none of this: its row locks queue fairly.
"""

import fcntl
import os
from pathlib import Path

from sqlalchemy import Connection, Engine, event

# The files beside the database: protections' priority, providers' reports' turn, and the
# dispatchers' batch in flight (`notify.dispatcher`).
PRIORITY, TURN, DISPATCH = ".priority", ".turn", ".dispatch"


def lock_path(url_database: str | None, suffix: str = PRIORITY) -> Path | None:
    """The lock file `suffix` beside an SQLite database file; None in memory."""
    if not url_database or url_database == ":memory:" or url_database.startswith("file:"):
        return None
    return Path(f"{url_database}{suffix}")


def claim_priority(connection: Connection) -> None:
    """Hold back dispatchers' next batches until this connection's transaction ends."""
    _hold_back(connection, PRIORITY)


def claim_turn(connection: Connection) -> None:
    """As `claim_priority`, for a provider's report: dispatchers' next batches wait for
    this connection's transaction; protections do not. Then waits for the batch in
    flight, if any. Call it before the transaction's first statement."""
    _hold_back(connection, TURN, DISPATCH)


def _hold_back(connection: Connection, *suffixes: str) -> None:
    """Take each lock file in turn, exclusively, until this connection's transaction ends."""
    info_key = f"{suffixes[0]}_fds"
    if connection.dialect.name != "sqlite" or connection.info.get(info_key) is not None:
        return
    paths = [lock_path(connection.engine.url.database, suffix) for suffix in suffixes]
    held: list[int] = []
    try:
        for path in paths:
            if path is None:  # in memory: one connection, nothing to wait for
                return
            fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
            held.append(fd)
            fcntl.flock(fd, fcntl.LOCK_EX)
    except BaseException:
        _release(held)
        raise
    connection.info[info_key] = held

    def release(conn: Connection) -> None:
        _release(conn.info.pop(info_key, []))

    event.listen(connection, "commit", release, once=True)
    event.listen(connection, "rollback", release, once=True)


def _release(fds: list[int]) -> None:
    # Closing a file lets its lock go; the last taken goes first.
    for fd in reversed(fds):
        os.close(fd)


def yield_to_priority(engine: Engine) -> None:
    """Wait while a protection holds priority or a provider's report its turn (SQLite);
    returns at once otherwise."""
    if engine.dialect.name != "sqlite":
        return
    for suffix in (PRIORITY, TURN):
        path = lock_path(engine.url.database, suffix)
        if path is None:
            return
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

"""The lookup process: a web process's SQLite search lookups, run beside it.

Started by `lookup_process.ProcessLookups` as `python -m safevine.store.public.lookup_worker`
with the database file's path in `SAFEVINE_LOOKUP_DATABASE`. It reads batches on stdin and
answers each on stdout (`lookup_wire`), running the web process's own statements on one
connection that carries the public grants (`sqlite_grants`) and may only read: the same
statements on the same file, each its own read of what is committed. It imports no more
than that (no SQLAlchemy), so it costs little memory. It ends when stdin does, as when its
web process is gone. It writes nothing else anywhere: an error is answered by its type's
name, and one it cannot answer ends it with that name alone on stderr.
"""

import os
import sqlite3
import sys
from typing import BinaryIO

from safevine.store.public.lookup_wire import LENGTH, Answer, Ask, batches, frame
from safevine.store.public.sqlite_grants import authorize

PATH_VARIABLE = "SAFEVINE_LOOKUP_DATABASE"
# As every SQLite connection of safevine waits for a lock (`store.engine`).
BUSY_TIMEOUT_MS = 10_000


def connect(path: str) -> sqlite3.Connection:
    # Autocommit: never in a transaction, so each statement reads what is committed.
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    connection.execute("PRAGMA query_only=ON")
    connection.set_authorizer(authorize)  # last: it refuses PRAGMAs
    return connection


def answer(connection: sqlite3.Connection, sql: str | None, ask: Ask) -> Answer:
    try:
        if sql is None:
            raise LookupError("a statement the process was not given")
        rows = connection.execute(sql, ask.parameters).fetchall()
    except Exception as error:
        return Answer(ask.id, error=type(error).__name__)
    return Answer(ask.id, rows)


def serve(source: BinaryIO, sink: BinaryIO, connection: sqlite3.Connection) -> None:
    statements: dict[int, str] = {}
    while True:
        head = source.read(LENGTH.size)
        if len(head) < LENGTH.size:
            return  # the web process is gone
        (size,) = LENGTH.unpack(head)
        body = source.read(size)
        if len(body) < size:
            return
        batch = batches.decode(body)
        statements.update(batch.statements)
        answered = [answer(connection, statements.get(a.statement), a) for a in batch.asks]
        sink.write(frame(answered))
        sink.flush()


def main() -> None:
    try:
        connection = connect(os.environ[PATH_VARIABLE])
        serve(sys.stdin.buffer, sys.stdout.buffer, connection)
    except Exception as error:
        sys.stderr.write(f"safevine lookup process ended: {type(error).__name__}\n")
        sys.exit(1)


if __name__ == "__main__":
    main()

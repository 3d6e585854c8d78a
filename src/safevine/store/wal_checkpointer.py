"""SQLite's write-ahead log copied into the database file by a thread of its own.

Left to itself, SQLite checkpoints in the connection that commits, once the log has grown
past `wal_autocheckpoint` pages: a bulk writer pays, at the end of its commits, for reading
back every page it wrote, writing it into the file and syncing the file. A checkpointer on
its own connection does that work beside the writer instead: SQLite lets a passive
checkpoint run while another connection writes (it copies only committed pages, and
waits for no lock), and the sqlite3 module lets go of the GIL while it runs, so it runs
on another core.
"""

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine

log = logging.getLogger("safevine.store")

# How often it looks for committed pages to copy (looking costs a read of the log's
# index): soon after a commit, so that the copy is done before the writer's next
# transaction begins, which then writes the log from its start again.
CHECKPOINT_EVERY_S = 0.01
# A writer whose next transaction began before the copy of its last was done appends to
# the log instead. Past this many pages (about 400 MB) the writer checkpoints by itself
# after its commit, as SQLite does (`bulk_writes`), so the log restarts at its next
# transaction.
LOG_BOUND_PAGES = 100_000


@contextmanager
def checkpointing(engine: Engine) -> Iterator[None]:
    """While the block runs, a thread checkpoints `engine`'s SQLite database (passive, on
    a pooled connection of its own) every `CHECKPOINT_EVERY_S`, and once more at the end.
    A checkpoint that fails is logged (its error's type only) and tried again at the next
    look; if no connection can be had, the thread ends with a warning. Either way the
    writer is never stopped by it, and the log is only ever longer for it."""
    stop = threading.Event()
    thread = threading.Thread(
        target=_checkpoint_until, args=(engine, stop), name="wal-checkpointer", daemon=True
    )
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _checkpoint_until(engine: Engine, stop: threading.Event) -> None:
    try:
        raw = engine.raw_connection()
    except Exception as error:
        log.warning("no connection to checkpoint the WAL with (%s)", type(error).__name__)
        return
    failures = 0
    try:
        cursor = raw.cursor()
        # Bounded: each wait ends by the interval, and the loop once `stop` is set, after
        # a last checkpoint.
        while True:
            last = stop.wait(CHECKPOINT_EVERY_S)
            try:
                cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
                cursor.fetchall()
            except engine.dialect.loaded_dbapi.Error as error:
                failures += 1
                if failures == 1:
                    log.warning("a WAL checkpoint failed (%s); trying again", type(error).__name__)
            if last:
                break
        cursor.close()
    finally:
        raw.close()

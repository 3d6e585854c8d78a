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
from types import TracebackType
from typing import Any

from sqlalchemy import Engine

log = logging.getLogger("safevine.store")

# How often it looks for committed pages to copy (looking costs a read of the log's
# index): soon after a commit, so that the copy is done before the writer's next
# transaction begins, which then writes the log from its start again.
CHECKPOINT_EVERY_S = 0.01
# A writer whose next transaction began before the copy of its last was done appends to
# the log instead. Past this many pages (400 MiB) the writer checkpoints by itself after
# its commit, as SQLite does (`bulk_writes`), so the log restarts at its next transaction.
LOG_BOUND_PAGES = 100_000


class WalCheckpointer:
    """While the block runs, a thread checkpoints `engine`'s SQLite database (passive, on
    a pooled connection of its own) every `CHECKPOINT_EVERY_S`, and once more at the end.
    A checkpoint that fails is logged (its error's type only) and tried again at the next
    look; if no connection can be had, the thread ends with a warning. Either way the
    writer is never stopped by it, and the log is only ever longer for it."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wal-checkpointer", daemon=True)
        self.failures = 0

    def __enter__(self) -> "WalCheckpointer":
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            raw = self._engine.raw_connection()
        except Exception as error:
            log.warning("no connection to checkpoint the WAL with (%s)", type(error).__name__)
            return
        try:
            cursor = raw.cursor()
            # Bounded: each wait ends by the interval, and the loop by `_stop`.
            while not self._stop.wait(CHECKPOINT_EVERY_S):
                self._checkpoint(cursor)
            self._checkpoint(cursor)
            cursor.close()
        finally:
            raw.close()

    def _checkpoint(self, cursor: Any) -> None:
        try:
            cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
            cursor.fetchall()
        except self._engine.dialect.loaded_dbapi.Error as error:
            self.failures += 1
            if self.failures == 1:
                log.warning("a WAL checkpoint failed (%s); trying again", type(error).__name__)

"""A connection set up for writing a large batch, and put back as it was afterwards.

On SQLite a feed's chunks touch index pages all over the file: with the default 2 MiB
page cache most of them are read again from the file for every chunk. And SQLite
checkpoints the WAL in the connection that commits, so the writer would stop after nearly
every chunk to copy what it wrote into the file and sync it: a thread does that beside it
instead (`wal_checkpointer`). Both settings are per connection, so only the connection
applying the batch pays for the larger cache, and only meanwhile; a web process's pooled
connections keep the small default and check SQLite's own way.

SQLite also keeps, for each statement that may fail halfway in a transaction, a journal
of the pages it changed, so that it alone can be undone. It starts in memory, spills into
a temporary file once one statement's passes 64 KiB (SQLite's default), and stays a file
until the transaction ends: from then on every row an `executemany` writes costs a few
writes to that file (BENCHMARKS.md, event ingest, ninth round). A feed's chunks can keep
it in memory (`statement_journals_in_memory`), as their statements are bounded by the
chunk.
"""

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

from sqlalchemy import Connection

from safevine.store.wal_checkpointer import LOG_BOUND_PAGES, checkpointing

# 256 MiB of page cache (a national feed's indexes outgrow 64 MiB: pages evicted in the
# middle of a chunk are read again and written twice).
BULK_CACHE_KIB = 262_144


@contextmanager
def bulk_writes(connection: Connection, checkpoints: bool = True) -> Iterator[Connection]:
    """Yield `connection`, tuned for bulk writes while the block runs (SQLite; elsewhere
    unchanged). The caller begins its own transactions inside. With `checkpoints` (and a
    database in WAL mode) a thread checkpoints meanwhile, the connection only once the log
    is past `LOG_BOUND_PAGES`; without, the connection never does: the caller does,
    between transactions."""
    if connection.dialect.name != "sqlite":
        yield connection
        return
    before = {
        name: int(connection.exec_driver_sql(f"PRAGMA {name}").scalar_one())
        for name in ("cache_size", "wal_autocheckpoint", "temp_store")
    }
    beside = checkpoints and connection.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
    _set(
        connection,
        {"cache_size": -BULK_CACHE_KIB, "wal_autocheckpoint": LOG_BOUND_PAGES if beside else 0},
    )
    try:
        with checkpointing(connection.engine) if beside else nullcontext():
            yield connection
    finally:
        if connection.in_transaction():
            connection.rollback()
        _set(connection, before)


def statement_journals_in_memory(connection: Connection, in_memory: bool) -> None:
    """Keep SQLite's statement journals in memory (or leave them to SQLite's default, a
    temporary file once large) for the transactions begun from now on; elsewhere nothing.
    Call it between transactions, inside `bulk_writes`, which puts the setting back.

    In memory, a statement's journal holds every page the statement changed until it
    ends: only for statements bounded by a chunk, never for one over a whole batch."""
    if connection.dialect.name == "sqlite":
        _set(connection, {"temp_store": 2 if in_memory else 0})


def _set(connection: Connection, values: dict[str, int]) -> None:
    for name, value in values.items():
        connection.exec_driver_sql(f"PRAGMA {name}={int(value)}")
    # SQLAlchemy began a transaction for the statements above; end it so the caller can.
    connection.commit()

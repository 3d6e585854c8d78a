"""A connection set up for writing a large batch, and put back as it was afterwards.

On SQLite a feed's chunks touch index pages all over the file: with the default 2 MiB
page cache most of them are read again from the file for every chunk, and the WAL is
checkpointed (with an fsync) after nearly every chunk. Both settings are per connection,
so only the connection applying the batch pays for the larger cache, and only meanwhile;
a web process's pooled connections keep the small default.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection

# 256 MiB of page cache (a national feed's indexes outgrow 64 MiB: pages evicted in the
# middle of a chunk are read again and written twice); a checkpoint every 10,000 pages
# (about 40 MB of WAL).
BULK_CACHE_KIB = 262_144
BULK_CHECKPOINT_PAGES = 10_000


@contextmanager
def bulk_writes(
    connection: Connection, checkpoint_pages: int = BULK_CHECKPOINT_PAGES
) -> Iterator[Connection]:
    """Yield `connection`, tuned for bulk writes while the block runs (SQLite; elsewhere
    unchanged). The caller begins its own transactions inside. With `checkpoint_pages`
    0 the connection never checkpoints by itself: the caller does, between transactions."""
    if connection.dialect.name != "sqlite":
        yield connection
        return
    before = {
        name: int(connection.exec_driver_sql(f"PRAGMA {name}").scalar_one())
        for name in ("cache_size", "wal_autocheckpoint")
    }
    _set(connection, {"cache_size": -BULK_CACHE_KIB, "wal_autocheckpoint": checkpoint_pages})
    try:
        yield connection
    finally:
        if connection.in_transaction():
            connection.rollback()
        _set(connection, before)


def _set(connection: Connection, values: dict[str, int]) -> None:
    for name, value in values.items():
        connection.exec_driver_sql(f"PRAGMA {name}={int(value)}")
    # SQLAlchemy began a transaction for the statements above; end it so the caller can.
    connection.commit()

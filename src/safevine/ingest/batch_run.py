"""Running a batch: the batch record, chunked transactions, rejects kept as they happen,
and the isolation that keeps one record's values from failing the records around it."""

import contextlib
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from itertools import islice
from typing import TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError

from safevine.ingest.summary import IngestSummary
from safevine.store.records.audit import append
from safevine.store.records.batches import Reject, finish_batch, start_batch, store_rejects

T = TypeVar("T")

# Records per transaction: large enough for fast bulk statements, small enough that a
# crash loses little work (a re-run skips what was stored).
CHUNK = 2000


def chunks(
    items: Iterable[T],
    size: int = CHUNK,
    *,
    weight: Callable[[T], int] | None = None,
    most: int = 0,
) -> Iterator[list[T]]:
    """`items` in lists of `size`; with `weight`, a list also ends once its items weigh
    `most` (a chunk of long records holds fewer of them, so memory stays bounded)."""
    iterator = iter(items)
    if weight is None:
        while chunk := list(islice(iterator, size)):
            yield chunk
        return
    chunk, held = [], 0
    for item in iterator:
        chunk.append(item)
        held += weight(item)
        if len(chunk) == size or held >= most:
            yield chunk
            chunk, held = [], 0
    if chunk:
        yield chunk


def caused_by_record(error: BaseException) -> bool:
    """True for an error a record's own values can cause: a conversion that fails
    (ValueError, OverflowError, TypeError, ArithmeticError), or a statement the database
    or its driver refuses for a value (a data error, a constraint, a value the driver
    cannot send). Such an error fails that record alone, as a reject with its type.
    False for the rest (a lost connection, a locked database): those stop the batch, and
    it is recorded as failed."""
    if isinstance(error, DataError | IntegrityError):
        return True
    if isinstance(error, DBAPIError):
        return False
    if isinstance(error, StatementError):
        # A non-driver error raised while sending the statement (sqlite3's OverflowError
        # for an integer beyond 64 bits, a string no encoder can write).
        return isinstance(error.orig, ValueError | OverflowError | TypeError)
    return isinstance(error, ValueError | OverflowError | TypeError | ArithmeticError)


def isolated(
    connection: Connection,
    summary: IngestSummary,
    items: list[T],
    apply: Callable[[Connection, list[T]], None],
    refuse: Callable[[T, BaseException], T],
    then: Callable[[Connection], None] | None = None,
) -> None:
    """`apply` the items in one transaction on `connection` (not in one), then `then` in it.

    If a record's values make that fail (see `caused_by_record`), the transaction is rolled
    back and the items applied again one at a time, each in a savepoint, so that only the
    records at fault fail: such an item is applied again as `refuse(item, error)` (a
    reject), and if even that fails, as the refusal of that. `summary` is put back as it
    was before each failed attempt, so nothing is counted twice. Any other error is
    raised, with everything of this chunk rolled back.
    """
    saved = summary.snapshot()
    try:
        with connection.begin():
            apply(connection, items)
            if then is not None:
                then(connection)
        return
    except Exception as error:
        if not caused_by_record(error):
            raise
        summary.restore(saved)
    with connection.begin():
        driver = connection.connection.dbapi_connection
        if connection.dialect.name == "sqlite" and not getattr(driver, "in_transaction", True):
            # pysqlite begins a transaction only before a write: without this, the first
            # SAVEPOINT would begin (and its RELEASE commit) one of SQLite's own.
            connection.exec_driver_sql("BEGIN")
        for item in items:
            _apply_one(connection, summary, item, apply, refuse)
        if then is not None:
            then(connection)


# An item, its refusal, and the refusal of that (see parsed.refused): then it is given up.
_ATTEMPTS = 3


def _apply_one(
    connection: Connection,
    summary: IngestSummary,
    item: T,
    apply: Callable[[Connection, list[T]], None],
    refuse: Callable[[T, BaseException], T],
) -> None:
    for attempt in range(_ATTEMPTS):
        saved = summary.snapshot()
        try:
            with connection.begin_nested():
                apply(connection, [item])
            return
        except Exception as error:
            if not caused_by_record(error) or attempt == _ATTEMPTS - 1:
                raise
            summary.restore(saved)
            item = refuse(item, error)


@contextlib.contextmanager
def running(
    engine: Engine, kind: str, source: str, actor: str | None = None
) -> Iterator[IngestSummary]:
    """A batch record for the block: finished as the summary says when the block ends, or
    as failed if it raises, so no batch is ever left `running`."""
    summary = begin(engine, kind, source, actor)
    try:
        yield summary
    except BaseException as error:
        stopped(summary, error)
        raise
    finally:
        finish(engine, summary)


def begin(engine: Engine, kind: str, source: str, actor: str | None = None) -> IngestSummary:
    """A new batch. `actor` names who sent it in the audit log; by default the feed."""
    with engine.begin() as connection:
        batch_id = start_batch(connection, kind, source)
    return IngestSummary(
        kind=kind, source=source, batch_id=batch_id, actor=(actor or f"feed:{source}")[:100]
    )


def keep_rejects(connection: Connection, summary: IngestSummary, rejects: list[Reject]) -> None:
    assert summary.batch_id is not None
    store_rejects(connection, summary.batch_id, summary.source, rejects)
    summary.add_rejects(rejects)


def stopped(summary: IngestSummary, error: BaseException) -> None:
    """Record that a batch ended on an error, so it is not left looking finished or still
    running. Only the error's type is kept: its text can quote a record."""
    summary.status = "failed"
    summary.notes.append(
        f"stopped by {type(error).__name__} after {summary.applied} applied; what was applied stays"
    )


def finish(engine: Engine, summary: IngestSummary, message: str | None = None) -> IngestSummary:
    """The batch's end, and its audit entry in the same transaction: a batch is never
    recorded as finished without its entry, nor the entry without the batch's outcome."""
    assert summary.batch_id is not None
    with engine.begin() as connection:
        append(
            connection,
            actor=summary.actor or f"feed:{summary.source}",
            action=f"ingest_{summary.kind}",
            target=f"batch:{summary.batch_id}",
            reason=f"{summary.status}: applied {summary.applied}, duplicates "
            f"{summary.duplicates}, rejected {summary.rejected}, derived {summary.derived_events}",
            at=now(),
        )
        finish_batch(
            connection,
            summary.batch_id,
            status=summary.status,
            total=summary.total,
            applied=summary.applied,
            duplicates=summary.duplicates,
            rejected=summary.rejected,
            derived_events=summary.derived_events,
            message=message or "; ".join(summary.notes) or None,
        )
    return summary


def now() -> datetime:
    return datetime.now(UTC)

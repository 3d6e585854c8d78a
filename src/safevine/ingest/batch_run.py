"""Running a batch: the batch record, chunked transactions, rejects kept as they happen."""

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from itertools import islice
from typing import TypeVar

from sqlalchemy import Connection, Engine

from safevine.ingest.summary import IngestSummary
from safevine.store.records.batches import Reject, finish_batch, start_batch, store_rejects

T = TypeVar("T")

# Records per transaction: large enough for fast bulk statements, small enough that a
# crash loses little work (a re-run skips what was stored).
CHUNK = 2000


def chunks(items: Iterable[T], size: int = CHUNK) -> Iterator[list[T]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def begin(engine: Engine, kind: str, source: str) -> IngestSummary:
    with engine.begin() as connection:
        batch_id = start_batch(connection, kind, source)
    return IngestSummary(kind=kind, source=source, batch_id=batch_id)


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
    assert summary.batch_id is not None
    with engine.begin() as connection:
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

"""Ingest batches and their rejected records, kept with the reason so nothing is lost."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, insert, update

from safevine.domain.value_ranges import RAW_KEPT, REASON_LENGTH, storable
from safevine.store.schema import ingest_batches, ingest_rejects


@dataclass(frozen=True)
class Reject:
    """A record that was not applied: where it was, which field, why, and the record itself."""

    line: int
    field: str
    reason: str
    raw: str


def start_batch(connection: Connection, kind: str, source: str) -> int:
    result = connection.execute(
        insert(ingest_batches)
        .values(
            kind=kind, source=storable(source, 300), started_at=datetime.now(UTC), status="running"
        )
        .returning(ingest_batches.c.id)
    )
    return int(result.scalar_one())


def store_rejects(
    connection: Connection, batch_id: int, source: str, rejects: Iterable[Reject]
) -> None:
    now = datetime.now(UTC)
    kept_source = storable(source, 300)
    rows = [
        {
            "batch_id": batch_id,
            "source": kept_source,
            "line": r.line,
            "field": storable(r.field, 60),
            "reason": storable(r.reason, REASON_LENGTH),
            "raw": storable(r.raw, RAW_KEPT),
            "created_at": now,
        }
        for r in rejects
    ]
    if rows:
        connection.execute(insert(ingest_rejects), rows)


def finish_batch(
    connection: Connection,
    batch_id: int,
    *,
    status: str,
    total: int,
    applied: int,
    duplicates: int,
    rejected: int,
    derived_events: int,
    message: str | None = None,
) -> None:
    connection.execute(
        update(ingest_batches)
        .where(ingest_batches.c.id == batch_id)
        .values(
            status=status,
            finished_at=datetime.now(UTC),
            total=total,
            applied=applied,
            duplicates=duplicates,
            rejected=rejected,
            derived_events=derived_events,
            message=message,
        )
    )

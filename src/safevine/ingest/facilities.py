"""Ingesting a facility list: new facilities added, changed ones updated, the rest untouched."""

from collections.abc import Iterable

from sqlalchemy import Connection, Engine

from safevine.ingest.batch_run import chunks, isolated, keep_rejects, running
from safevine.ingest.facilities_csv import parse_facilities_csv
from safevine.ingest.parsed import Parsed, refused, with_overlong
from safevine.ingest.summary import IngestSummary
from safevine.store.records.batches import Reject
from safevine.store.records.facilities import FacilityInput, upsert_facilities


def ingest_facilities(
    engine: Engine, lines: Iterable[bytes], *, source: str, actor: str | None = None
) -> IngestSummary:
    """Load facilities; an unusable file raises UnreadableSourceError and changes nothing.
    A row whose values cannot be stored fails alone (see `batch_run.isolated`)."""
    parsed = with_overlong(parse_facilities_csv(lines, source), lines)
    with running(engine, "facilities", source, actor) as summary, engine.connect() as connection:
        for chunk in chunks(parsed):
            summary.total += len(chunk)
            isolated(connection, summary, chunk, lambda c, rows: _apply(c, summary, rows), refused)
    return summary


def _apply(
    connection: Connection, summary: IngestSummary, chunk: list[Parsed[FacilityInput]]
) -> None:
    good = {p.value.code: p for p in chunk if p.value is not None}
    rejects = [Reject(p.line, p.field, p.reason, p.raw) for p in chunk if p.value is None]
    for p in chunk:
        if p.value is not None and good[p.value.code] is not p:
            rejects.append(Reject(p.line, "code", f"{p.value.code!r} appears twice", p.raw))
    outcome = upsert_facilities(connection, [p.value for p in good.values() if p.value])
    keep_rejects(connection, summary, sorted(rejects, key=lambda r: r.line))
    summary.applied += outcome.inserted + outcome.updated
    summary.duplicates += outcome.unchanged

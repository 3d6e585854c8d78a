"""Ingesting a custody event feed (JSON Lines or CSV) in chunked transactions."""

from collections.abc import Iterable
from typing import Literal

from sqlalchemy import Connection, Engine

from safevine.domain.custody_event import CustodyEventInput, PersonFacts
from safevine.domain.protection import Protection
from safevine.ingest.batch_run import begin, chunks, finish, keep_rejects, now
from safevine.ingest.event_record import asserted_protection
from safevine.ingest.events_csv import parse_events_csv
from safevine.ingest.events_jsonl import parse_events_jsonl
from safevine.ingest.parsed import Parsed
from safevine.ingest.summary import IngestSummary
from safevine.store.records.batches import Reject
from safevine.store.records.events import record_events
from safevine.store.records.persons import resolve_persons
from safevine.store.records.protection import protect

EventFormat = Literal["jsonl", "csv"]


def ingest_events(
    engine: Engine, lines: Iterable[bytes], *, source: str, fmt: EventFormat
) -> IngestSummary:
    """Store every valid event once; keep every invalid one as a reject with its reason.

    Raises UnreadableSourceError before changing anything when the input cannot be used at all.
    """
    parse = parse_events_csv if fmt == "csv" else parse_events_jsonl
    parsed = parse(lines, source)
    summary = begin(engine, "events", source)
    for chunk in chunks(parsed):
        with engine.begin() as connection:
            _apply_chunk(connection, summary, chunk)
    return finish(engine, summary)


def _apply_chunk(
    connection: Connection, summary: IngestSummary, chunk: list[Parsed[CustodyEventInput]]
) -> None:
    at = now()
    summary.total += len(chunk)
    valid = [p for p in chunk if p.value is not None]
    rejects = [Reject(p.line, p.field, p.reason, p.raw) for p in chunk if p.value is None]
    protect_anyway = [
        claim[0] for p in chunk if p.value is None and (claim := asserted_protection(p.record))
    ]
    outcome = record_events(
        connection,
        [p.value for p in valid if p.value is not None],
        origin="feed",
        now=at,
        source=summary.source,
        batch_id=summary.batch_id,
    )
    for index, error in outcome.errors:
        record = valid[index]
        rejects.append(Reject(record.line, error.field, error.reason, record.raw))
        assert record.value is not None
        if record.value.person.protection == Protection.PROTECTED:
            protect_anyway.append(record.value.person.a_number)
    _protect_rejected(connection, summary, protect_anyway)
    rejects.sort(key=lambda r: r.line)
    keep_rejects(connection, summary, rejects)
    summary.applied += len(outcome.stored)
    summary.duplicates += outcome.duplicates


def _protect_rejected(connection: Connection, summary: IngestSummary, a_numbers: list[str]) -> None:
    """Fail closed: a rejected record that asks for protection still protects its person."""
    if not a_numbers:
        return
    at = now()
    ids = resolve_persons(connection, [PersonFacts(a) for a in a_numbers], at)
    for person_id in ids:
        if isinstance(person_id, int):
            protect(
                connection,
                person_id,
                actor="feed",
                source=summary.source,
                reason="protection asserted by a rejected feed record",
                now=at,
                batch_id=summary.batch_id,
            )
    summary.notes.append(
        f"{len(a_numbers)} rejected record(s) asked for protection; those persons are protected"
    )

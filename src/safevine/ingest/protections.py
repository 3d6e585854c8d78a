"""Ingesting a protection list. Protection takes effect at once; clearing a protected person
is refused here and left to a staff member with a reason."""

from collections.abc import Iterable

from sqlalchemy import Connection, Engine

from safevine.domain.custody_event import PersonFacts
from safevine.domain.protection import Protection
from safevine.ingest.batch_run import chunks, isolated, keep_rejects, now, running
from safevine.ingest.parsed import Parsed, refused, with_overlong
from safevine.ingest.protections_csv import ProtectionRow, parse_protections_csv, protection_claim
from safevine.ingest.summary import IngestSummary
from safevine.store.records.batches import Reject
from safevine.store.records.persons import resolve_persons
from safevine.store.records.protection import apply_feed_protection, current_protection, protect

_NO_FEED_CLEAR = (
    "a feed cannot clear a protected person; a staff member must run "
    "`safevine clear A-NUMBER --reason TEXT`"
)


def ingest_protections(
    engine: Engine, lines: Iterable[bytes], *, source: str, actor: str | None = None
) -> IngestSummary:
    """Apply a protection list; raises UnreadableSourceError before changing anything.

    Every row is applied, a duplicate, or a reject naming its line and field; a row whose
    values cannot be stored fails alone (see `batch_run.isolated`), so one bad row never
    keeps the valid protections of the same file from taking effect."""
    parsed = with_overlong(parse_protections_csv(lines, source), lines)
    with running(engine, "protections", source, actor) as summary, engine.connect() as connection:
        for chunk in chunks(parsed):
            summary.total += len(chunk)
            isolated(connection, summary, chunk, lambda c, rows: _apply(c, summary, rows), refused)
    return summary


def _apply(
    connection: Connection, summary: IngestSummary, chunk: list[Parsed[ProtectionRow]]
) -> None:
    at = now()
    source = summary.source
    rejects = [Reject(p.line, p.field, p.reason, p.raw) for p in chunk if p.value is None]
    claims = [(p, a) for p in chunk if p.value is None and (a := protection_claim(p.record))]
    rows = [p for p in chunk if p.value is not None]
    ids = resolve_persons(
        connection,
        [PersonFacts(p.value.a_number) for p in rows if p.value]
        + [PersonFacts(a) for _, a in claims],
        at,
    )
    applied = duplicates = 0
    for parsed_row, person_id in zip(rows, ids, strict=False):
        row = parsed_row.value
        assert row is not None and isinstance(person_id, int)
        before = current_protection(connection, person_id)
        after = apply_feed_protection(
            connection,
            person_id,
            row.status,
            source=row.source or source,
            as_of=row.as_of,
            now=at,
            batch_id=summary.batch_id,
        )
        if after is not None:
            applied += 1
        elif row.status == Protection.CLEARED and before == Protection.PROTECTED:
            rejects.append(Reject(parsed_row.line, "status", _NO_FEED_CLEAR, parsed_row.raw))
        else:
            duplicates += 1
    notes = []
    for (parsed_row, _), person_id in zip(claims, ids[len(rows) :], strict=True):
        assert isinstance(person_id, int)
        protect(
            connection,
            person_id,
            actor="feed",
            source=source,
            reason="protection list row could not be read; protected to fail closed",
            now=at,
            batch_id=summary.batch_id,
        )
        notes.append(f"line {parsed_row.line}: unreadable row protected its person")
    keep_rejects(connection, summary, sorted(rejects, key=lambda r: r.line))
    summary.applied += applied
    summary.duplicates += duplicates
    summary.notes.extend(notes)

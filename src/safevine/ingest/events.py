"""Ingesting a custody event feed (JSON Lines or CSV) in chunked transactions."""

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, Engine

from safevine.domain.batch_thresholds import EventStats, Thresholds, judge_events
from safevine.domain.custody_event import CustodyEventInput, PersonFacts
from safevine.domain.protection import Protection
from safevine.ingest.batch_run import (
    begin,
    caused_by_record,
    chunks,
    finish,
    isolated,
    keep_rejects,
    now,
    stopped,
)
from safevine.ingest.chunk_halves import halves
from safevine.ingest.collector import collections_between_chunks
from safevine.ingest.event_record import asserted_protection
from safevine.ingest.events_csv import column_of, csv_records, parse_csv_record
from safevine.ingest.events_jsonl import jsonl_records, parse_jsonl_record
from safevine.ingest.parse_process import ChunkParser, Pending
from safevine.ingest.parsed import Parsed, refused, with_overlong
from safevine.ingest.source import CsvRow
from safevine.ingest.summary import IngestSummary
from safevine.store.bulk_writes import bulk_writes, statement_journals_in_memory
from safevine.store.records.batches import Reject, store_rejects
from safevine.store.records.events import RecordedEvents, record_events
from safevine.store.records.holds import confirm_batch, facility_context, hold_batch
from safevine.store.records.persons import resolve_persons
from safevine.store.records.protection import protect

EventFormat = Literal["jsonl", "csv"]

# Events a transaction: five times `batch_run.CHUNK`, as each chunk's statements and the
# index pages it dirties cost once per chunk whatever its size. A record that fails the
# chunk is found by applying the chunk again record by record (`batch_run.isolated`).
EVENT_CHUNK = 10_000
# ...and at most this much of their text, so that a feed of long lines (the line limit is
# 1 MiB) holds no more in memory than one of ordinary ones: two chunks are held at a time.
EVENT_CHUNK_TEXT = 3 * 1024 * 1024
# Whether chunks after the first are parsed in a child process (`parse_process`). None:
# on SQLite, when the machine has a second core for it. Not on PostgreSQL, where the next
# chunk is parsed while the server applies this one's writes, and a child would take the
# server's core (measured: BENCHMARKS.md, event ingest).
PARSE_IN_CHILD: bool | None = None
# PostgreSQL: whether a chunk that can be split into two halves of disjoint people is
# applied on two connections at once (`chunk_halves`, `_apply_halves`).
SPLIT_CHUNKS = True
# How long either half's transaction waits for a lock, while both are open, before the
# chunk is applied whole instead.
HALF_LOCK_WAIT_MS = 5_000


def ingest_events(
    engine: Engine,
    lines: Iterable[bytes],
    *,
    source: str,
    fmt: EventFormat,
    thresholds: Thresholds | None = None,
    actor: str | None = None,
) -> IngestSummary:
    """Store every valid event once; keep every invalid one as a reject with its reason.
    A record whose values cannot be stored fails alone (see `batch_run.isolated`).

    The batch is judged when it ends (see `records.holds`): an ordinary one is confirmed
    and its notifications go out; one that looks like a data accident is held. A batch
    of one chunk is judged in the transaction that applies it, so it waits for nothing.
    Raises UnreadableSourceError before changing anything when the input cannot be used.
    """
    # The feed is read here, record by record; each chunk is parsed by `parser` (see
    # `parse_process`: after the first, in a second process while the one before is applied).
    records: Iterator[Unit]
    convert: Callable[[Any], Parsed[CustodyEventInput]]
    if fmt == "csv":
        records, convert = csv_records(lines, source), parse_csv_record
    else:
        records, convert = jsonl_records(lines, source), parse_jsonl_record
    # A record the store refuses is named as the reader names it: by its CSV column.
    field_name: Callable[[str], str] = column_of if fmt == "csv" else str
    units = with_overlong(records, lines)
    summary = begin(engine, "events", source, actor)
    judge = _Judge(thresholds or Thresholds.from_env())
    # One connection for the whole feed, a transaction per chunk (on PostgreSQL a second,
    # for the second half of each chunk that can be split: `_apply_halves`).
    with (
        ChunkParser(convert, second_process=_parse_in_child(engine)) as parser,
        engine.connect() as connection,
        _second_connection(engine) as second,
        bulk_writes(connection),
        collections_between_chunks() as chunk_done,
    ):
        pending = map(
            parser.parse, chunks(units, EVENT_CHUNK, weight=_text_length, most=EVENT_CHUNK_TEXT)
        )
        # On PostgreSQL the next chunk is read while the server applies this one's writes
        # (`record_events`' `meanwhile`); elsewhere before this one's transaction begins,
        # so SQLite's write lock is never held while a file is read. Either way a chunk
        # commits only once the next is read: the last one is judged in its transaction.
        overlap = connection.dialect.name == "postgresql"
        beside = None if overlap else _TakenBesideCommit()
        try:
            # Inside: a source that fails before its first chunk is whole fails the batch.
            read = next(pending, None)
            in_memory = False
            while read is not None:
                chunk = read.result()
                ahead = _ReadAhead(pending)
                # SQLite: every chunk but the last keeps its statement journals in memory
                # (`bulk_writes`). The last releases the batch's held alerts in one
                # statement, whose journal grows with the batch: it keeps them on file.
                if not overlap:
                    wanted = ahead() is not None
                    if wanted != in_memory:
                        in_memory = wanted
                        statement_journals_in_memory(connection, in_memory)
                summary.total += len(chunk)
                in_halves = (
                    second is not None
                    and (parts := halves(chunk)) is not None
                    and _apply_halves(connection, second, summary, parts, judge, field_name, ahead)
                )
                if not in_halves:
                    isolated(
                        connection,
                        summary,
                        chunk,
                        _applying(summary, judge, field_name, ahead if overlap else None),
                        refused,
                        then=_judging(judge, summary, ahead, beside),
                    )
                read = ahead()
                if beside is not None:
                    beside.join()
                chunk_done()
        except BaseException as caught:
            if beside is not None:
                # Nothing may still be taking a chunk in while the parser is closed.
                beside.join(quietly=True)
            # A failure reading ahead comes out as itself, as it did before it was wrapped.
            error = caught.error if isinstance(caught, _ReadAheadError) else caught
            stopped(summary, error)
            # Whatever was applied is judged too, so nothing waits in `held` forever; the
            # batch stays marked failed whether or not that holds it, or itself fails.
            try:
                with engine.begin() as other:
                    judge.decide(other, summary)
            finally:
                summary.status = "failed"
            if error is not caught:
                raise error from None
            raise
        finally:
            finish(engine, summary)
    return summary


@contextmanager
def _second_connection(engine: Engine) -> Iterator[Connection | None]:
    """PostgreSQL (with `SPLIT_CHUNKS`): a second connection for the feed, on which half of
    each chunk that can be split is applied (`_apply_halves`); elsewhere None."""
    if engine.dialect.name != "postgresql" or not SPLIT_CHUNKS:
        yield None
        return
    with engine.connect() as second:
        yield second


def _parse_in_child(engine: Engine) -> bool | None:
    if PARSE_IN_CHILD is not None:
        return PARSE_IN_CHILD
    return None if engine.dialect.name == "sqlite" else False


Chunk = list[Parsed[CustodyEventInput]]
# A record read but not yet parsed: a JSON Lines line (number, text), a CSV row or a row
# `csv` refused (line, reason, text), or an overlong line's reject.
Unit = tuple[int, str] | CsvRow | tuple[int, str, str] | Parsed[CustodyEventInput]


def _applying(
    summary: IngestSummary,
    judge: "_Judge",
    field_name: Callable[[str], str],
    meanwhile: Callable[[], object] | None,
) -> Callable[[Connection, Chunk], None]:
    def apply(connection: Connection, records: Chunk) -> None:
        _apply_chunk(connection, summary, records, judge, field_name, meanwhile)

    return apply


def _judging(
    judge: "_Judge",
    summary: IngestSummary,
    ahead: "_ReadAhead",
    beside: "_TakenBesideCommit | None" = None,
) -> Callable[[Connection], None]:
    """The batch is judged in the transaction of its last chunk. With `beside`, the next
    chunk is taken in while this one's commits (see `_TakenBesideCommit`)."""

    def then(connection: Connection) -> None:
        following = ahead()
        if following is None:
            judge.decide(connection, summary)
        elif beside is not None:
            beside.start(following)

    return then


class _TakenBesideCommit:
    """SQLite: the next chunk's parsed records are taken in (read from the parsing child
    and decoded, `Pending.result`) by a thread while this chunk's transaction commits.
    A commit writes every page the chunk changed to the log in one call into SQLite, with
    the interpreter's lock let go, so the thread runs meanwhile; without it the writer
    took the chunk in after its commit, one after the other. Nothing else runs in the
    thread: the next chunk is read from the feed when it was before."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def start(self, pending: Pending[CustodyEventInput]) -> None:
        """Take `pending` in, once (a chunk applied again record by record starts nothing
        more)."""
        if self._thread is not None:
            return

        def take() -> None:
            try:
                pending.result()
            except BaseException as error:  # given to the writer's thread at `join`
                self._error = error

        self._thread = threading.Thread(target=take, name="feed-chunk-taker", daemon=True)
        self._thread.start()

    def join(self, *, quietly: bool = False) -> None:
        """Wait for the thread; raise what stopped it (unless `quietly`)."""
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()
        error, self._error = self._error, None
        if error is not None and not quietly:
            raise error


class _ReadAheadError(Exception):
    """Reading the next chunk failed while this one was applied: carried out of the chunk's
    transaction as it is, never taken for a fault of one of its records."""

    def __init__(self, error: Exception) -> None:
        super().__init__(type(error).__name__)
        self.error = error


class _ReadAhead:
    """The chunk after the one being applied, read at the first call, and the same answer
    (or failure) at every later one: the record-by-record retry of a chunk calls it again."""

    def __init__(self, pending: Iterator[Pending[CustodyEventInput]]) -> None:
        self._pending = pending
        self._read = False
        self._chunk: Pending[CustodyEventInput] | None = None
        self._error: Exception | None = None

    def __call__(self) -> Pending[CustodyEventInput] | None:
        if not self._read:
            try:
                self._chunk = next(self._pending, None)
            except Exception as error:
                self._error = error
            self._read = True
        if self._error is not None:
            raise _ReadAheadError(self._error)
        return self._chunk


def _text_length(unit: "Unit") -> int:
    """A record's text, as read: a chunk ends once its records' text reaches its bound."""
    if isinstance(unit, Parsed | CsvRow):
        return len(unit.raw)
    return len(unit[-1])


class _Judge:
    """Gathers what the thresholds need while the feed is read, and decides at the end."""

    def __init__(self, thresholds: Thresholds) -> None:
        self.thresholds = thresholds
        self.stats = EventStats.empty()
        self.populations: dict[str, int] = {}
        self.newest: dict[str, datetime | None] = {}
        self.decided = False

    def observe(
        self, connection: Connection, batch_id: int, events: list[CustodyEventInput], at: datetime
    ) -> None:
        codes = {e.facility_code for e in events if e.facility_code} - set(self.populations)
        if codes:
            context = facility_context(connection, sorted(codes), batch_id)
            for code in codes:
                self.populations[code], self.newest[code] = context.get(code, (0, None))
        for e in events:
            self.stats.add(
                e.facility_code,
                e.kind.value,
                e.occurred_at,
                at,
                self.newest.get(e.facility_code or ""),
                self.thresholds,
            )

    def decide(self, connection: Connection, summary: IngestSummary) -> None:
        if self.decided or summary.batch_id is None:
            return
        self.decided = True
        rule = judge_events(self.stats, self.populations, self.thresholds)
        if rule is None:
            confirm_batch(connection, summary.batch_id, now())
            return
        summary.hold_id = hold_batch(connection, summary.batch_id, rule, now())
        summary.status = "held"
        summary.notes.append(
            f"held for review (hold {summary.hold_id}): {rule}; "
            "no notification goes out until it is released"
        )


def _apply_chunk(
    connection: Connection,
    summary: IngestSummary,
    chunk: list[Parsed[CustodyEventInput]],
    judge: _Judge,
    field_name: Callable[[str], str],
    meanwhile: Callable[[], object] | None = None,
) -> None:
    """Apply the records; `summary` and `judge` learn of them only once every write is done,
    so an attempt that fails (and is made again record by record) has counted nothing.
    `meanwhile`: see `record_events`."""
    at = now()
    outcome = _record(connection, summary, chunk, at, meanwhile)
    _settle(connection, summary, chunk, outcome, judge, field_name, at)


def _record(
    connection: Connection,
    summary: IngestSummary,
    chunk: list[Parsed[CustodyEventInput]],
    at: datetime,
    meanwhile: Callable[[], object] | None = None,
) -> RecordedEvents:
    """`record_events` for the chunk's readable records."""
    valid = [p for p in chunk if p.value is not None]
    return record_events(
        connection,
        [p.value for p in valid if p.value is not None],
        contents=[p.content for p in valid],
        origin="feed",
        now=at,
        source=summary.source,
        batch_id=summary.batch_id,
        provisional=True,
        meanwhile=meanwhile,
    )


def _settle(
    connection: Connection,
    summary: IngestSummary,
    chunk: list[Parsed[CustodyEventInput]],
    outcome: RecordedEvents,
    judge: _Judge,
    field_name: Callable[[str], str],
    at: datetime,
    shown: list[Reject] | None = None,
    also_stored: Sequence[CustodyEventInput] | None = (),
) -> None:
    """What follows the records of `chunk` being recorded as `outcome`: the rejects kept
    (a refused record asking for protection still protects), the judge and `summary` told.
    With `shown`, the rejects are stored but go to `shown` instead of `summary`, for the
    caller to add in line order with another half's. The judge also observes
    `also_stored` (another half's events), or, if it is None, nothing now: the judge reads
    facilities' populations as they are after the whole chunk's writes."""
    valid = [p for p in chunk if p.value is not None]
    rejects = [Reject(p.line, p.field, p.reason, p.raw) for p in chunk if p.value is None]
    protect_anyway = [
        claim[0] for p in chunk if p.value is None and (claim := asserted_protection(p.record))
    ]
    for index, error in outcome.errors:
        record = valid[index]
        rejects.append(Reject(record.line, field_name(error.field), error.reason, record.raw))
        assert record.value is not None
        if record.value.person.protection == Protection.PROTECTED:
            protect_anyway.append(record.value.person.a_number)
    _protect_rejected(connection, summary, protect_anyway)
    rejects.sort(key=lambda r: r.line)
    if shown is None:
        keep_rejects(connection, summary, rejects)
    else:
        assert summary.batch_id is not None
        store_rejects(connection, summary.batch_id, summary.source, rejects)
        shown += rejects
    assert summary.batch_id is not None
    if also_stored is not None:
        stored = [s.event for s in outcome.stored]
        judge.observe(connection, summary.batch_id, [*stored, *also_stored], at)
    summary.applied += len(outcome.stored)
    summary.duplicates += outcome.duplicates


def _apply_halves(
    first: Connection,
    second: Connection,
    summary: IngestSummary,
    parts: tuple[list[Parsed[CustodyEventInput]], list[Parsed[CustodyEventInput]]],
    judge: _Judge,
    field_name: Callable[[str], str],
    ahead: "_ReadAhead",
) -> bool:
    """PostgreSQL: a chunk's two halves of disjoint people (`chunk_halves`), each in a
    transaction of its own connection: the second half's records are recorded while the
    server applies the first half's writes, and the next chunk is read while it applies
    the second's. The second commits first; the first then settles its records, judges the
    batch if the chunk was the last, and commits.

    False, with nothing changed, if anything failed before the second half committed: the
    caller applies the chunk whole, as always, which meets any record at fault (or any
    other failure) again and deals with it then. A failure of the first half after the
    second committed: that half alone is applied again as a whole chunk is."""
    half, other = parts
    at = now()
    saved = summary.snapshot()
    their_rejects: list[Reject] = []
    mine, theirs = first.begin(), second.begin()
    try:
        # The halves share nothing either writes. Should either ever wait for a lock (the
        # other's, which cannot be let go while this process waits, or another writer's),
        # it gives up in time and the chunk is applied whole.
        for connection in (first, second):
            connection.exec_driver_sql(f"SET LOCAL lock_timeout = {int(HALF_LOCK_WAIT_MS)}")
        recorded: list[RecordedEvents] = []

        def record_other() -> None:
            recorded.append(_record(second, summary, other, at, meanwhile=ahead))

        outcome = _record(first, summary, half, at, meanwhile=record_other)
        if not recorded:  # the first half had nothing to write
            record_other()
        theirs_stored = [s.event for s in recorded[0].stored]
        _settle(second, summary, other, recorded[0], judge, field_name, at, their_rejects, None)
    except Exception:
        summary.restore(saved)
        theirs.rollback()
        mine.rollback()
        return False
    try:
        theirs.commit()
    except BaseException:
        summary.restore(saved)
        mine.rollback()
        raise
    saved = summary.snapshot()
    my_rejects: list[Reject] = []
    try:
        # Alone now: it waits for a lock as any chunk's transaction does.
        first.exec_driver_sql("SET LOCAL lock_timeout TO DEFAULT")
        _settle(first, summary, half, outcome, judge, field_name, at, my_rejects, theirs_stored)
        _judging(judge, summary, ahead)(first)
        mine.commit()
    except Exception as error:
        summary.restore(saved)
        mine.rollback()
        if not caused_by_record(error):
            summary.add_rejects(their_rejects)
            raise
        shown = len(summary.rejects)
        with first.begin():
            assert summary.batch_id is not None
            judge.observe(first, summary.batch_id, theirs_stored, at)
        isolated(
            first,
            summary,
            half,
            _applying(summary, judge, field_name, None),
            refused,
            then=_judging(judge, summary, ahead),
        )
        summary.add_rejects(their_rejects)
        summary.rejects[shown:] = sorted(summary.rejects[shown:], key=lambda r: r.line)
        return True
    summary.add_rejects(sorted(my_rejects + their_rejects, key=lambda r: r.line))
    return True


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

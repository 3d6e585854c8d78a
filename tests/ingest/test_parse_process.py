"""A feed's later chunks parsed in a child process: the same records, rejects and log
records as parsing here, and a child that cannot start or dies leaves its work to this
process instead of failing the feed."""

import json
import logging
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text

from safevine.domain.event_content import event_content
from safevine.ingest import event_record, parse_process
from safevine.ingest import events as event_ingest
from safevine.ingest.batch_run import chunks
from safevine.ingest.event_record import asserted_protection, protection_part
from safevine.ingest.events import ingest_events
from safevine.ingest.events_csv import csv_records, parse_csv_record
from safevine.ingest.events_jsonl import jsonl_records, parse_jsonl_record
from safevine.ingest.parse_process import ChunkParser, parse_chunk
from safevine.ingest.parsed import Parsed, unreadable
from safevine.ingest.source import FeedLines
from safevine.store.decoy import DECOY_PERSON_ID
from safevine.store.engine import make_engine
from safevine.store.schema import custody_events
from tests.builders import csv_lines, days_ago, event, jsonl, load_facilities, person
from tests.conftest import Databases


def _mixed_feed() -> list[bytes]:
    """Good events of every shape and the ways a line or a record goes wrong."""
    good = [
        event("m1", "booked", days_ago(3), person("A100000001", aliases=[
            {"given_name": "Ana", "family_name": "Ruiz"}])),
        event("m2", "released", days_ago(2), person("A100000002"), reason="bond"),
        event("m3", "removed", days_ago(2), person("A100000003"), destination_country="GT"),
        event("m4", "transferred", days_ago(1), person("A100000004"), from_facility_code="f2"),
        event("m5", "booked", days_ago(1), person("A100000005", protection="protected")),
    ]  # fmt: skip
    bad: list[dict[str, Any] | str] = [
        "{not json",
        "[1, 2]",
        "[" * 100_000 + "]" * 100_000,
        '{"event_id": "n1", "sequence": ' + "9" * 5000 + "}",
        event("b1", "vanished", days_ago(1), person("A100000006")),
        event("b2", "booked", days_ago(1), person("A100000007", protection="maybe")),
        {"event_id": "b3", "kind": "booked", "person": "A100000008"},
        # Values nested too deep to be pickled, where a protection claim is read.
        event("b4", "booked", days_ago(1), person("A100000009", protection=_deep(700))),
        event("b5", "booked", days_ago(1), person(_deep(700), protection="protected")),  # type: ignore[arg-type]
    ]
    lines = jsonl(*good, *bad, *good[:2])
    lines.insert(3, b"\n")
    lines.insert(5, "caf\xe9".encode("latin-1") + b"\n")
    return lines * 3


def _deep(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def _units(lines: list[bytes]) -> list[list[Any]]:
    return list(chunks(jsonl_records(lines, "mixed.jsonl"), 7))


def test_the_child_parses_every_record_as_this_process_does() -> None:
    pieces = _units(_mixed_feed())
    here = [parse_chunk(parse_jsonl_record, units) for units in pieces]
    with ChunkParser(parse_jsonl_record, second_process=True) as parser:
        pending = [parser.parse(units) for units in pieces]
        there = [p.result() for p in pending]
        assert parser.parsed_in_child == parser.sent_on_wire == len(pieces) - 1
    assert there == here
    assert any(p.value is None for chunk in there for p in chunk)
    assert any(p.value is not None and p.value.person.aliases for chunk in there for p in chunk)


def test_each_event_comes_with_its_content_worked_out_where_it_was_parsed() -> None:
    header = ["event_id", "kind", "occurred_at", "facility_code", "a_number", "reason"]
    rows = [["c1", "released", days_ago(1).isoformat(), "F1", "A200000001", "bond"]]
    lines = csv_lines(header, *rows)
    parsed = [parse_jsonl_record(unit) for unit in jsonl_records(_mixed_feed(), "mixed.jsonl")]
    parsed += [parse_csv_record(unit) for unit in csv_records(lines, "rows.csv")]
    events = [p for p in parsed if p.value is not None]
    assert len(events) == 7 * 3 + 1
    for p in events:
        assert p.value is not None
        assert p.content == event_content(p.value)
    assert all(p.content is None for p in parsed if p.value is None)
    assert {p.content.details for p in events if p.content} >= {'{"reason": "bond"}'}


def test_an_event_whose_content_cannot_be_worked_out_when_parsed_gets_it_from_the_writer(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(_event: object) -> None:
        raise RecursionError

    record = event("w1", "released", days_ago(1), person("A300000001"), reason="bond")
    monkeypatch.setattr(event_record, "event_content", failing)
    parsed = parse_jsonl_record((1, json.dumps(record)))
    assert parsed.value is not None and parsed.content is None
    monkeypatch.undo()
    load_facilities(sqlite_engine, "F1")
    monkeypatch.setattr(event_record, "event_content", failing)
    summary = ingest_events(sqlite_engine, jsonl(record), source="w.jsonl", fmt="jsonl")
    assert (summary.applied, summary.rejected) == (1, 0)
    events, _, _ = _stored(sqlite_engine)
    assert events == [("w1", *event_content(parsed.value))]


def test_csv_rows_and_overlong_lines_come_back_as_they_went() -> None:
    header = ["event_id", "kind", "occurred_at", "facility_code", "a_number", "protection"]
    rows = [[f"c{i}", "booked", days_ago(1).isoformat(), "F1", f"A2000000{i:02d}", ""]
            for i in range(12)]  # fmt: skip
    rows[4][1] = "vanished"
    rows[6][5] = "protected"
    lines = csv_lines(header, *rows)
    lines.insert(3, b"only,three,fields\n")
    pieces = list(chunks(csv_records(lines, "rows.csv"), 5))
    overlong = Parsed(99, "x" * 10, field="line", reason="is too long")
    pieces[1].append(overlong)
    here = [parse_chunk(parse_csv_record, units) for units in pieces]
    with ChunkParser(parse_csv_record, second_process=True) as parser:
        there = [parser.parse(units).result() for units in pieces]
        assert parser.parsed_in_child == parser.sent_on_wire == len(pieces) - 1
    assert there == here
    assert overlong in there[1]


def failing_convert(unit: tuple[int, str]) -> Parsed[Any]:
    """Parses as JSON Lines, except a record holding "boom": it fails as a gap in the
    checks would, which `unreadable` turns into a reject and a warning."""
    number, raw = unit
    if "boom" in raw:
        try:
            raise KeyError("boom")
        except KeyError as error:
            return unreadable(number, raw, error, {})
    return parse_jsonl_record(unit)


def test_what_the_child_logs_is_logged_here(caplog: pytest.LogCaptureFixture) -> None:
    pieces = _units(jsonl(*[event(f"w{i}", "booked", days_ago(1), person(f"A30000{i:04d}"))
                            for i in range(20)], '{"boom": 1}'))  # fmt: skip
    with (
        caplog.at_level(logging.WARNING, logger="safevine.ingest"),
        ChunkParser(failing_convert, second_process=True) as parser,
    ):
        there = [parser.parse(units).result() for units in pieces]
        assert parser.parsed_in_child == len(pieces) - 1
    assert there[-1][-1].reason.startswith("could not be read (KeyError)")
    warnings = [r for r in caplog.records if r.getMessage() == "feed record could not be read"]
    assert len(warnings) == 1
    assert warnings[0].__dict__["error"] == "KeyError"
    assert "boom" not in caplog.text.replace("in failing_convert", "")


def test_a_child_that_dies_leaves_its_chunks_to_this_process(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pieces = _units(_mixed_feed())
    here = [parse_chunk(parse_jsonl_record, units) for units in pieces]
    with ChunkParser(parse_jsonl_record, second_process=True) as parser:
        there = [parser.parse(pieces[0]).result(), parser.parse(pieces[1]).result()]
        child = parser._child
        assert child is not None
        child.kill()
        child.wait()
        with caplog.at_level(logging.WARNING, logger="safevine.ingest"):
            there += [parser.parse(units).result() for units in pieces[2:]]
        assert parser.parsed_in_child == 1
    assert there == here
    assert "the feed's parsing process failed" in caplog.text


def test_a_child_that_cannot_start_leaves_the_feed_to_this_process(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    pieces = _units(_mixed_feed())
    with (
        caplog.at_level(logging.WARNING, logger="safevine.ingest"),
        ChunkParser(parse_jsonl_record, second_process=True) as parser,
    ):
        there = [parser.parse(units).result() for units in pieces]
    assert there == [parse_chunk(parse_jsonl_record, units) for units in pieces]
    assert parser.parsed_in_child == 0
    assert "FileNotFoundError" in caplog.records[0].__dict__["error"]


class _Children:
    """Every child process `parse_process` starts."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.started: list[subprocess.Popen[bytes]] = []
        real = subprocess.Popen

        def popen(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
            child = real(*args, **kwargs)
            self.started.append(child)
            return child

        monkeypatch.setattr(parse_process.subprocess, "Popen", popen)


def _stored(engine: Engine) -> tuple[list[Any], list[Any], list[Any]]:
    with engine.connect() as connection:
        events = connection.execute(
            select(custody_events.c.event_id, custody_events.c.content_hash, text("details"))
            .where(custody_events.c.person_id != DECOY_PERSON_ID)
            .order_by(custody_events.c.event_id)
        ).all()
        statuses = connection.execute(
            text(
                "SELECT p.a_number, s.state, s.event_id FROM custody_status s "
                "JOIN persons p ON p.id = s.person_id ORDER BY p.a_number"
            )
        ).all()
        rejects = connection.execute(
            text("SELECT line, field, reason, raw FROM ingest_rejects ORDER BY line, field")
        ).all()
    return [tuple(r) for r in events], [tuple(r) for r in statuses], [tuple(r) for r in rejects]


def test_a_feed_of_many_chunks_is_stored_as_it_is_without_the_child(
    engine: Engine, databases: Databases, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    children = _Children(monkeypatch)
    monkeypatch.setattr(event_ingest, "EVENT_CHUNK", 6)
    path = tmp_path / "feed.jsonl"
    # Lines over FeedLines' limit below among them: their rejects keep their places.
    path.write_bytes(b"".join(_mixed_feed()))
    other = make_engine(databases.create(engine.dialect.name))
    results = []
    for in_child, target in ((False, engine), (True, other)):
        monkeypatch.setattr(event_ingest, "PARSE_IN_CHILD", in_child)
        load_facilities(target, "F1", "F2")
        with path.open("rb") as handle:
            lines = FeedLines(handle, 1_000)
            summary = ingest_events(target, lines, source="feed.jsonl", fmt="jsonl")
        results.append((summary.applied, summary.rejected, summary.duplicates, _stored(target)))
    other.dispose()
    assert results[0] == results[1]
    applied, rejected, _, (events, statuses, rejects) = results[1]
    assert applied and rejected and events and statuses
    assert any("bytes long" in reason for _, _, reason, _ in rejects)
    # One child, for the second feed only, gone once its feed was done.
    assert [child.poll() for child in children.started] == [0]


def test_a_feed_that_fails_stops_its_child(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    children = _Children(monkeypatch)
    monkeypatch.setattr(event_ingest, "EVENT_CHUNK", 5)
    monkeypatch.setattr(event_ingest, "PARSE_IN_CHILD", True)
    load_facilities(sqlite_engine, "F1")

    def lines() -> Iterator[bytes]:
        for i in range(30):
            record = event(f"s{i}", "booked", days_ago(1), person(f"A4000{i:05d}"))
            yield json.dumps(record).encode() + b"\n"
        raise OSError("the feed's disk went away")

    with pytest.raises(OSError, match="disk went away"):
        ingest_events(sqlite_engine, lines(), source="broken.jsonl", fmt="jsonl")
    assert len(children.started) == 1
    assert children.started[0].poll() is not None


@pytest.mark.parametrize("where", ["person", "top level"])
@pytest.mark.parametrize(
    "protection",
    ["protected", " Cleared ", "", None, "maybe", 0, False, True, [], {"a": 1}, _deep(50), "-"],
)
@pytest.mark.parametrize("a_number", ["A100000001", "100-000-001", "", None, 100000001, ["A1"]])
def test_the_part_of_a_record_a_parsed_one_keeps_claims_what_the_record_claims(
    where: str, protection: Any, a_number: Any
) -> None:
    facts = {"a_number": a_number, "protection": protection, "given_name": "Ana"}
    record = {"event_id": "p1", "person": facts} if where == "person" else facts
    assert asserted_protection(protection_part(record)) == asserted_protection(record)
    for missing in ("a_number", "protection"):
        short = {k: v for k, v in facts.items() if k != missing}
        record = {"person": short} if where == "person" else short
        assert asserted_protection(protection_part(record)) == asserted_protection(record)


def _booked_lines(count: int, prefix: str) -> list[bytes]:
    return [
        json.dumps(event(f"{prefix}{i}", "booked", days_ago(1), person(f"A5{i:08d}"))).encode()
        + b"\n"
        for i in range(count)
    ]


def _chunks_of_five_in_the_child(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> Callable[[parse_process.Pending[Any]], Any]:
    """Feeds in chunks of five, parsed in the child, with facility F1; `Pending.result` as
    it is, for a test to wrap."""
    monkeypatch.setattr(event_ingest, "EVENT_CHUNK", 5)
    monkeypatch.setattr(event_ingest, "PARSE_IN_CHILD", True)
    load_facilities(engine, "F1")
    return parse_process.Pending.result


def test_on_sqlite_each_later_chunk_is_taken_in_while_the_one_before_commits(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _chunks_of_five_in_the_child(sqlite_engine, monkeypatch)
    takers: list[str] = []

    def watched(pending: parse_process.Pending[Any]) -> Any:
        takers.append(threading.current_thread().name)
        return result(pending)

    monkeypatch.setattr(parse_process.Pending, "result", watched)
    summary = ingest_events(sqlite_engine, _booked_lines(23, "t"), source="t.jsonl", fmt="jsonl")
    assert (summary.status, summary.applied) == ("completed", 23)
    # Chunks 2 to 5 by the thread, as their predecessors commit, and each again (its answer
    # kept) by the writer before it is applied; the first, parsed here, by the writer.
    assert takers.count("feed-chunk-taker") == 4
    assert all(
        thread == "feed-chunk-taker" or thread == threading.main_thread().name for thread in takers
    )
    assert not [t for t in threading.enumerate() if t.name == "feed-chunk-taker"]


def test_a_chunk_that_cannot_be_taken_in_fails_the_feed_with_its_error(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _chunks_of_five_in_the_child(sqlite_engine, monkeypatch)

    def failing(pending: parse_process.Pending[Any]) -> Any:
        if threading.current_thread().name == "feed-chunk-taker":
            raise MemoryError("planted: no room to take the chunk in")
        return result(pending)

    monkeypatch.setattr(parse_process.Pending, "result", failing)
    with pytest.raises(MemoryError, match="planted"):
        ingest_events(sqlite_engine, _booked_lines(12, "u"), source="u.jsonl", fmt="jsonl")
    with sqlite_engine.connect() as connection:
        status, applied = connection.execute(
            text("SELECT status, applied FROM ingest_batches WHERE kind = 'events'")
        ).one()
        stored = connection.execute(
            select(custody_events.c.event_id).where(custody_events.c.event_id.like("u%"))
        ).all()
    # The first chunk committed before the second could be taken in; nothing after it.
    assert (status, applied, sorted(e for (e,) in stored)) == (
        "failed",
        5,
        [f"u{i}" for i in range(5)],
    )
    assert not [t for t in threading.enumerate() if t.name == "feed-chunk-taker"]

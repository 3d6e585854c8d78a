"""Parsed event records as the parsing child sends them: back exactly as they went, or not
that way at all."""

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from safevine.domain.custody_event import CustodyEventInput, PersonFacts
from safevine.domain.event_kinds import EventKind
from safevine.ingest import parse_process
from safevine.ingest.batch_run import chunks
from safevine.ingest.events_jsonl import jsonl_records, parse_jsonl_record
from safevine.ingest.parse_process import ChunkParser, parse_chunk
from safevine.ingest.parsed import Parsed
from safevine.ingest.parsed_wire import decode_events, encode_events
from tests.builders import event, jsonl, person


def _times(parsed: list[Parsed[Any]]) -> list[str | None]:
    """Each event's time as text: unlike `==` on times, it tells their offsets apart."""
    return [p.value.occurred_at.isoformat() if p.value else None for p in parsed]


def _feed() -> list[bytes]:
    day = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=250_000)
    times = [
        day.isoformat().replace("+00:00", "Z"),
        day.isoformat(),
        day.astimezone(timezone(timedelta(hours=-5))).isoformat(),
        day.astimezone(timezone(timedelta(hours=5, minutes=30, seconds=15))).isoformat(),
        day.isoformat().replace("+00:00", "-00:00"),
        day.astimezone(timezone(-timedelta(minutes=1))).isoformat(),
    ]
    records = [
        event(f"w{i}", "booked", datetime.now(UTC), person(f"A40000000{i}"), facility="F1")
        for i in range(len(times))
    ]
    for record, moment in zip(records, times, strict=True):
        record["occurred_at"] = moment
    records.append(event("w9", "released", datetime.now(UTC), person("A400000009"), reason="x"))
    return [*jsonl(*records), b"{not json\n"]


def test_a_chunk_comes_back_equal_with_each_time_in_its_own_offset() -> None:
    parsed = [parse_jsonl_record(unit) for unit in jsonl_records(_feed(), "w.jsonl")]
    assert sum(p.value is not None for p in parsed) == 6
    data = encode_events(parsed)
    assert data is not None
    back = decode_events(data)
    assert back == parsed
    assert _times(back) == _times(parsed)
    assert any(t and t.endswith("+05:30:15") for t in _times(back))


def test_the_child_sends_its_chunks_on_the_wire_and_they_arrive_as_parsed_here() -> None:
    lines = _feed() * 3
    pieces = list(chunks(jsonl_records(lines, "w.jsonl"), 5))
    here = [parse_chunk(parse_jsonl_record, units) for units in pieces]
    with ChunkParser(parse_jsonl_record, second_process=True) as parser:
        there = [parser.parse(units).result() for units in pieces]
        assert parser.parsed_in_child == parser.sent_on_wire == len(pieces) - 1
    assert there == here
    assert [_times(chunk) for chunk in there] == [_times(chunk) for chunk in here]


def _event(occurred_at: datetime, details: dict[str, Any] | None = None) -> Parsed[Any]:
    value = CustodyEventInput(
        "e1", EventKind.BOOKED, occurred_at, PersonFacts("A400000001"), "F1", 3, details or {}
    )
    return Parsed(1, "{}", value)


def test_what_would_not_come_back_the_same_is_not_sent_this_way() -> None:
    now = datetime.now(UTC)
    named = timezone(timedelta(hours=-5), "EST")
    for chunk in (
        [_event(now.astimezone(named))],  # the zone's name would be lost
        [_event(now, {"court": ("a", "b")})],  # a tuple would come back a list
        [_event(now, {"n": 2**70})],  # too large for MessagePack
        [Parsed(1, "{}", value={"not": "an event"})],
    ):
        assert encode_events(chunk) is None


def test_a_chunk_of_rejects_alone_goes_this_way() -> None:
    chunk: list[Parsed[Any]] = [Parsed(1, "[1]", field="record", reason="must be an object")]
    data = encode_events(chunk)
    assert data is not None and decode_events(data) == chunk


@given(
    offset=st.timedeltas(
        min_value=timedelta(hours=-23, minutes=-59, seconds=-59),
        max_value=timedelta(hours=23, minutes=59, seconds=59),
    ),
    moment=st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(9999, 12, 30)),
)
def test_any_fixed_offset_comes_back_as_it_went(offset: timedelta, moment: datetime) -> None:
    occurred_at = moment.replace(tzinfo=timezone(offset))
    chunk = [_event(occurred_at)]
    data = encode_events(chunk)
    assert data is not None
    back = decode_events(data)
    assert back == chunk
    assert back[0].value.occurred_at.isoformat() == occurred_at.isoformat()
    assert back[0].value.occurred_at.utcoffset() == offset


def test_the_records_raw_text_and_protection_claim_come_back_whole() -> None:
    record = event("p1", "booked", datetime.now(UTC), person("A400000011", protection="protected"))
    record["person"]["given_name"] = "Zoë \u202e\U0001f600"
    lines = [json.dumps(record, ensure_ascii=False).encode() + b"\n"]
    parsed = [parse_jsonl_record(unit) for unit in jsonl_records(lines, "p.jsonl")]
    data = encode_events(parsed)
    assert data is not None
    back = decode_events(data)
    assert back == parsed and back[0].raw == parsed[0].raw and back[0].record == parsed[0].record


def test_a_chunk_that_cannot_be_decoded_here_is_parsed_here(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def failing(_data: bytes) -> list[Parsed[Any]]:
        raise msgspec.DecodeError("truncated")

    monkeypatch.setattr(parse_process, "decode_events", failing)
    lines = _feed() * 2
    pieces = list(chunks(jsonl_records(lines, "w.jsonl"), 5))
    with ChunkParser(parse_jsonl_record, second_process=True) as parser:
        there = [parser.parse(units).result() for units in pieces]
        assert parser.parsed_in_child == parser.sent_on_wire == 0
    assert there == [parse_chunk(parse_jsonl_record, units) for units in pieces]
    assert "the feed's parsing process failed" in caplog.text
    assert "A4000" not in caplog.text


def test_values_nested_deeper_than_can_be_encoded_go_pickled_rather_than_fail() -> None:
    deep: list[Any] = []
    for _ in range(100_000):
        deep = [deep]
    assert encode_events([_event(datetime.now(UTC), {"court": deep})]) is None

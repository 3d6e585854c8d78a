"""Parsed event records as the parsing child sends them back: MessagePack, through msgspec.

Unpickling a chunk was a large share of the writing process's time (BENCHMARKS.md, event
ingest, ninth round): pickle rebuilds each of a record's frozen dataclasses through its
Python constructor. msgspec decodes straight into the same dataclasses in C.

MessagePack keeps every value of a parsed event exactly but one: a time's UTC offset (it
carries the instant, and msgspec gives it back in UTC). The offsets that are not UTC go
beside the records and are put back. So that nothing else can differ unseen, the child
decodes what it encoded and compares it with what it parsed; a chunk that does not come
back equal, or holds anything else, goes as a pickle (`encode_events` gives None).
"""

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec

from safevine.domain.custody_event import CustodyEventInput
from safevine.ingest.parsed import Parsed

# (index of the record in the chunk, its time's UTC offset in microseconds)
_Offsets = list[tuple[int, int]]
_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(tuple[list[Parsed[CustodyEventInput]], _Offsets])
_MICROSECOND = timedelta(microseconds=1)


def encode_events(parsed: list[Parsed[Any]]) -> bytes | None:
    """The chunk as `decode_events` gives it back equal, or None when it cannot be."""
    offsets: _Offsets = []
    for index, record in enumerate(parsed):
        event = record.value
        if event is None:
            continue
        if type(event) is not CustodyEventInput:
            return None
        zone = event.occurred_at.tzinfo
        if zone is UTC:
            continue
        offset = event.occurred_at.utcoffset()
        # Only the unnamed fixed offsets `datetime.fromisoformat` makes are rebuilt.
        if type(zone) is not timezone or offset is None:
            return None
        if zone.tzname(None) != timezone(offset).tzname(None):
            return None
        offsets.append((index, offset // _MICROSECOND))
    try:
        data = _ENCODER.encode((parsed, offsets))
        back = decode_events(data)
    except (TypeError, ValueError, OverflowError, RecursionError, msgspec.MsgspecError):
        return None  # what MessagePack cannot hold goes pickled
    if back != parsed or any(
        b.value is not None and p.value is not None and _zone(b.value) != _zone(p.value)
        for b, p in zip(back, parsed, strict=True)
    ):
        return None
    return data


def decode_events(data: bytes) -> list[Parsed[CustodyEventInput]]:
    """What `encode_events` encoded."""
    parsed, offsets = _DECODER.decode(data)
    for index, microseconds in offsets:
        event = parsed[index].value
        assert event is not None
        local = event.occurred_at.astimezone(timezone(timedelta(microseconds=microseconds)))
        # Still being built: nothing has seen this instance yet.
        object.__setattr__(event, "occurred_at", local)
    return parsed


def _zone(event: CustodyEventInput) -> tuple[object, str | None]:
    moment: datetime = event.occurred_at
    return moment.utcoffset(), moment.tzname()

"""Custody events as JSON Lines: one JSON object per line, in the nested shape of docs/feeds.md."""

import json
from collections.abc import Iterable, Iterator

from safevine.domain.custody_event import CustodyEventInput
from safevine.domain.errors import FieldError
from safevine.ingest.event_record import parse_event
from safevine.ingest.parsed import Parsed
from safevine.ingest.source import UNDECODABLE, text_lines


def parse_events_jsonl(lines: Iterable[bytes], source: str) -> Iterator[Parsed[CustodyEventInput]]:
    """Yield one Parsed per non-blank line; blank lines are skipped."""
    for number, line in enumerate(text_lines(lines), start=1):
        raw = line.rstrip("\r\n")
        if not raw.strip():
            continue
        if UNDECODABLE in raw:
            yield Parsed(number, raw, field="line", reason="is not valid UTF-8 text")
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as error:
            yield Parsed(number, raw, field="line", reason=f"is not valid JSON ({error.msg})")
            continue
        if not isinstance(record, dict):
            yield Parsed(number, raw, field="line", reason="must be a JSON object")
            continue
        try:
            yield Parsed(number, raw, parse_event(record), record=record)
        except FieldError as error:
            yield Parsed(number, raw, field=error.field, reason=error.reason, record=record)

"""Custody events as JSON Lines: one JSON object per line, in the nested shape of docs/feeds.md."""

import json
from collections.abc import Iterable, Iterator
from itertools import chain

from safevine.domain.custody_event import CustodyEventInput
from safevine.domain.errors import FieldError
from safevine.ingest.event_record import parse_event, protection_part, stored_content
from safevine.ingest.events_jsonl_typed import typed_jsonl_record
from safevine.ingest.parsed import Parsed, unreadable
from safevine.ingest.source import UNDECODABLE, UnreadableSourceError, text_lines

SNIFF_LINES = 5


def parse_events_jsonl(lines: Iterable[bytes], source: str) -> Iterator[Parsed[CustodyEventInput]]:
    """One Parsed per non-blank line, lazily; blank lines are skipped.

    The first few records are read at once: if none of them is a JSON object, the input
    is not JSON Lines at all, and UnreadableSourceError is raised before anything changes.
    """
    return map(parse_jsonl_record, jsonl_records(lines, source))


def jsonl_records(lines: Iterable[bytes], source: str) -> Iterator[tuple[int, str]]:
    """(line number, text) of each non-blank line, lazily, once the first few are checked
    as `parse_events_jsonl` says; `parse_jsonl_record` turns each into its Parsed."""
    numbered = enumerate(text_lines(lines), start=1)
    head: list[tuple[int, str]] = []
    for number, line in numbered:
        if line.strip():
            head.append((number, line))
            if len(head) == SNIFF_LINES:
                break
    if not head:
        raise UnreadableSourceError(f"{source}: is empty; expected JSON Lines")
    if not any(isinstance(_json_or_none(line), dict) for _, line in head):
        raise UnreadableSourceError(
            f"{source}: the first {len(head)} line(s) hold no JSON object, "
            "so this is not JSON Lines"
        )
    return _non_blank(chain(head, numbered))


def _json_or_none(line: str) -> object:
    try:
        return json.loads(line)
    except (ValueError, RecursionError):
        return None


def _non_blank(numbered: Iterable[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    for number, line in numbered:
        raw = line.rstrip("\r\n")
        if raw.strip():
            yield number, raw


def parse_jsonl_record(numbered: tuple[int, str]) -> Parsed[CustodyEventInput]:
    """One line of a JSON Lines feed as its event, or as a reject saying why. The usual
    line is decoded by its types (`events_jsonl_typed`), any other by `read_jsonl_record`."""
    number, raw = numbered
    if UNDECODABLE in raw:
        return Parsed(number, raw, field="line", reason="is not valid UTF-8 text")
    return typed_jsonl_record(number, raw) or read_jsonl_record(number, raw)


def read_jsonl_record(number: int, raw: str) -> Parsed[CustodyEventInput]:
    """The reference reader: any line, as its event or as a reject naming the field."""
    try:
        record = json.loads(raw)
    except json.JSONDecodeError as error:
        return Parsed(number, raw, field="line", reason=f"is not valid JSON ({error.msg})")
    except RecursionError:
        return Parsed(number, raw, field="line", reason="is nested too deeply to be read")
    except ValueError:
        # Python refuses to read an integer of more than 4,300 digits.
        return Parsed(number, raw, field="line", reason="holds a number too long to be read")
    if not isinstance(record, dict):
        return Parsed(number, raw, field="line", reason="must be a JSON object")
    claim = protection_part(record)
    try:
        event = parse_event(record)
    except FieldError as error:
        return Parsed(number, raw, field=error.field, reason=error.reason, record=claim)
    except Exception as error:
        return unreadable(number, raw, error, claim)
    return Parsed(number, raw, event, record=claim, content=stored_content(event))

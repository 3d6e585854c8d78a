"""What an event says, as it is stored: its content hash and its details as JSON.

Both are pure functions of the event, so a feed works them out where it parses its records
(`ingest.parse_process`: in a second process on SQLite) and hands them to
`store.records.events.record_events` with the events; anyone else's events get them there.
"""

import hashlib
import json
from typing import Any, NamedTuple

from safevine.domain.custody_event import CustodyEventInput


class EventContent(NamedTuple):
    # The fingerprint that tells a resend from a reused event id (`content_hash`).
    hash: str
    # The details as the `details` column holds them.
    details: str


def event_content(event: CustodyEventInput) -> EventContent:
    """The event's content hash and its details as stored.

    The hash is stored with each event, so it must never change: it is the SHA-256 of
    `json.dumps([event_id, kind, occurred_at, sequence, facility_code, a_number, details],
    sort_keys=True, separators=(",", ":"), default=str)`, written out here field by field
    because that call cost a tenth of the ingest (tests/store/test_content_hash.py checks
    the two agree).
    """
    canonical, stored = _details_texts(event.details)
    return EventContent(_hash(event, canonical), stored)


def content_hash(event: CustodyEventInput) -> str:
    """Fingerprint of what an event says, to tell a resend from a reused event id."""
    return event_content(event).hash


# How json.dumps writes a str (ensure_ascii): the C encoder, called directly.
_json_string = json.encoder.encode_basestring_ascii


def _hash(event: CustodyEventInput, canonical_details: str) -> str:
    facility = "null" if event.facility_code is None else _json_string(event.facility_code)
    canonical = (
        f"[{_json_string(event.event_id)},{_json_string(event.kind.value)},"
        f"{_json_string(event.occurred_at.isoformat())},{int(event.sequence)},{facility},"
        f"{_json_string(event.person.a_number)},{canonical_details}]"
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


# An event's details as the content hash writes them and as they are stored, by their
# items, for details of text alone: a feed repeats a few (a release's reason, a removal's
# country) thousands of times. Emptied when full.
_DETAILS_TEXTS: dict[tuple[tuple[str, str], ...], tuple[str, str]] = {}
_DETAILS_TEXTS_KEPT = 10_000


def _details_texts(details: dict[str, Any]) -> tuple[str, str]:
    """(the canonical JSON the content hash takes, the JSON stored) of `details`."""
    if not details:
        return "{}", "{}"
    items = tuple(details.items())
    for key, value in items:
        # Only text: 1, 1.0 and True are equal keys, and are written differently.
        if value.__class__ is not str or key.__class__ is not str:
            return _write_details(details)
    texts = _DETAILS_TEXTS.get(items)
    if texts is None:
        texts = _write_text_details(items)
        if len(_DETAILS_TEXTS) >= _DETAILS_TEXTS_KEPT:
            _DETAILS_TEXTS.clear()
        _DETAILS_TEXTS[items] = texts
    return texts


def _write_text_details(items: tuple[tuple[str, str], ...]) -> tuple[str, str]:
    """`_write_details` of details that are text alone, written out as `json.dumps` does
    (its C string encoder, keys sorted by their text, its two kinds of separators): a
    hearing's details are new with every event, so they seldom come from the cache."""
    canonical = ",".join(f"{_json_string(k)}:{_json_string(v)}" for k, v in sorted(items))
    stored = ", ".join(f"{_json_string(k)}: {_json_string(v)}" for k, v in items)
    return f"{{{canonical}}}", f"{{{stored}}}"


def _write_details(details: dict[str, Any]) -> tuple[str, str]:
    canonical = json.dumps(details, sort_keys=True, separators=(",", ":"), default=str)
    return canonical, json.dumps(details)

"""Custody event feeds, JSON Lines and CSV, against any records: every record is applied,
a duplicate, or a reject naming its line and a field at fault, and the batch ends as the
hold rules say, on SQLite and PostgreSQL. See tests/ingest/feed_properties.py.
"""

import json
import re
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, note
from hypothesis import strategies as st
from sqlalchemy import Engine

from safevine.domain.batch_thresholds import Thresholds
from safevine.ingest.events import ingest_events
from safevine.ingest.source import UnreadableSourceError
from tests.builders import NOW, load_facilities
from tests.ingest.feed_properties import (
    A_FORMS,
    APPLIED,
    BAD_A_NUMBERS,
    BAD_BIRTHS,
    BAD_COUNTRIES,
    BAD_MOMENTS,
    BAD_NAME_PARTS,
    BAD_TEXT,
    CSV_MANGLES,
    DUPLICATE,
    FUTURE_HOURS,
    GOOD_BIRTHS,
    GOOD_COUNTRIES,
    GOOD_NAMES,
    LINE,
    LONG_TEXT,
    ODD_MOMENTS,
    ODD_TEXT,
    OFFSETS,
    PAST_HOURS,
    Expect,
    Layout,
    Outcome,
    Ref,
    Written,
    batch_count,
    check,
    csv_record,
    facility_code,
    feed_input,
    fuzz_settings,
    holds_surrogate,
    layouts,
    moment,
    next_tag,
    overlong_lines,
    physical_lines,
    rejected,
    render,
    write,
)

KINDS = [
    "booked",
    "transferred",
    "released",
    "removed",
    "escaped",
    "returned",
    "died",
    "hearing_scheduled",
]
NEEDS_FACILITY = {"booked", "transferred", "returned"}


def raw(json_text: str) -> str:
    """A JSON value written as is (`1e400`, `NaN`), which no Python value dumps to."""
    return f"@@raw:{json_text}@@"


_RAW = re.compile(r'"@@raw:(.*?)@@"')

BAD_MOMENTS_JSON: list[Any] = [20261125, 2**64, ["2026-11-25T12:00:00Z"], {"at": 1}, True, 1.5]

GOOD_SEQUENCES: list[Any] = [None, "", "0", "7", " 7 ", "-0", "2147483647"]
GOOD_SEQUENCES_JSON: list[Any] = [0, 7, 2**31 - 1, raw("-0"), 3.0, -0.0]
BAD_SEQUENCES: list[Any] = [
    "-1",
    "2147483648",
    "18446744073709551616",
    "9" * 5000,
    "1e400",
    "1.5",
    "3.0",
    "²",
    "0x10",
    "seven",
]
BAD_SEQUENCES_JSON: list[Any] = [
    -1,
    2**31,
    2**63,
    2**64,
    -(2**63),
    10**100,
    1.5,
    raw("1e400"),
    raw("-1e400"),
    raw("NaN"),
    raw("Infinity"),
    True,
    [],
    {},
]

BAD_A_NUMBERS_JSON: list[Any] = [1.5e8, [12345678], True, 2**64]

GOOD_PROTECTIONS: list[Any] = [None, "protected", "cleared", "PROTECTED", " Cleared "]
BAD_PROTECTIONS: list[Any] = ["maybe", "prot\x00ected"]
BAD_PROTECTIONS_JSON: list[Any] = [["protected"], True]
GOOD_ALIASES_JSON: list[Any] = [
    None,
    [],
    [{"given_name": "Jose", "family_name": "Lopez"}],
    [{"given_name": "محمد", "family_name": "علي"}, {"given_name": "Zoë", "family_name": "Ñ"}],
]
BAD_ALIASES_JSON: list[tuple[Any, str]] = [
    ({"given_name": "Jose", "family_name": "Lopez"}, "person.aliases"),
    ("Jose/Lopez", "person.aliases"),
    (["Jose Lopez"], "person.aliases[0]"),
    ([{"given_name": "Jose"}], "person.aliases[0].family_name"),
    ([{"given_name": "Jo\x00se", "family_name": "L"}], "person.aliases[0].given_name"),
]
GOOD_ALIASES_CSV = [None, "Jose/Lopez", "Jose/Lopez; María/García", " ; Jose/Lopez ;"]
BAD_ALIASES_CSV = ["Jose", "/Lopez", "Jo\x00se/Lopez", "1/2"]
COURTS = ["Eloy Immigration Court", *ODD_TEXT]
RELEASE_REASONS = ["bond", "parole", "supervision", "BOND", "case_terminated", "unknown"]
DESTINATIONS = ["Mexico", "GT", "El Salvador"]

# The CSV column a field of the nested record is read from (docs/feeds.md).
CSV_COLUMN = {
    "details.reason": "release_reason",
    "details.destination_country": "destination_country",
    "details.court": "court",
    "details.hearing_at": "hearing_at",
    "details.from_facility_code": "from_facility_code",
}
CSV_COLUMNS = [
    "event_id",
    "kind",
    "occurred_at",
    "facility_code",
    "sequence",
    "a_number",
    "given_name",
    "family_name",
    "date_of_birth",
    "country_of_birth",
    "protection",
    "aliases",
    "release_reason",
    "destination_country",
    "court",
    "hearing_at",
    "from_facility_code",
]
REQUIRED_COLUMNS = ["event_id", "kind", "occurred_at", "a_number"]


def csv_field(field: str) -> str:
    if field.startswith("person.aliases"):
        return "aliases"
    return CSV_COLUMN.get(field, field.removeprefix("person."))


@dataclass(frozen=True)
class Draft:
    """One event record as generated, with what the oracle needs to know of it."""

    record: dict[str, Any]
    # Fields a reader refuses (nested names); empty when the record reads.
    broken: frozenset[str]
    unknown_facility: bool
    future: bool
    content: int
    a_slot: int
    birth: str | None
    country: str | None


@dataclass(frozen=True)
class Entry:
    draft: Draft
    # A change to the record's line as a whole (see JSONL_MANGLES, CSV_MANGLES).
    mangle: str | None = None
    # JSON Lines: non-ASCII escaped, so a lone surrogate is sent as `\ud800`.
    ascii: bool = True


@dataclass
class Feed:
    fmt: str
    entries: list[Entry]
    layout: Layout
    blank_at: list[int]
    again: bool
    columns: list[str]
    header_names: list[str]
    quote_all: bool


def _pick(draw: st.DrawFn, options: list[Any]) -> Any:
    return draw(st.sampled_from(options))


@st.composite
def drafts(
    draw: st.DrawFn,
    slot: int,
    fmt: str,
    *,
    hostile: bool | None = None,
    id_ref: Ref | None = None,
    a_slot: int | None = None,
    birth_other_than: str | None = None,
) -> Draft:
    """A record for `slot`: valid but for up to two fields (when hostile), each of those
    given a value its reader refuses."""
    as_json = fmt == "jsonl"
    kind = _pick(draw, KINDS)
    person_fields = ["a_number", "names", "date_of_birth", "country_of_birth", "protection"]
    fields = ["event_id", "kind", "occurred_at", "facility_code", "unknown_facility",
              "sequence", *person_fields, "aliases", "details"]  # fmt: skip
    if as_json:
        fields.append("person")
    if hostile is None:
        hostile = draw(st.integers(0, 4)) < 2
    targets = (
        set(draw(st.sets(st.sampled_from(fields), min_size=1, max_size=2))) if hostile else set()
    )
    if id_ref is not None:
        targets.discard("event_id")
    if birth_other_than is not None:
        targets -= {"a_number", "date_of_birth"}
    broken: set[str] = set()
    future = False

    def choose(name: str, good: list[Any], bad: list[Any], field: str) -> Any:
        if name in targets:
            broken.add(field)
            return _pick(draw, bad)
        return _pick(draw, good)

    record: dict[str, Any] = {}
    id_forms = ["plain", "padded", "emoji", "rtl", "combining", "max"] + (
        ["int"] if as_json else []
    )
    bad_ids = ["", "  ", *BAD_TEXT, *LONG_TEXT] + (
        [None, ["x"], {"id": 1}, 1.5, True] if as_json else []
    )
    record["event_id"] = choose(
        "event_id", [id_ref or Ref("e", slot, _pick(draw, id_forms))], bad_ids, "event_id"
    )
    bad_kinds = ["arrested", 'boo"ked', "book\x00ed", ""] + (
        [None, ["booked"], 1] if as_json else []
    )
    record["kind"] = choose("kind", [kind, kind.upper(), f" {kind} "], bad_kinds, "kind")
    if "occurred_at" in targets:
        broken.add("occurred_at")
        record["occurred_at"] = _pick(draw, BAD_MOMENTS + (BAD_MOMENTS_JSON if as_json else []))
    else:
        when = draw(st.integers(0, 9))
        if when == 0:
            record["occurred_at"] = _pick(draw, ODD_MOMENTS)
        elif when == 1:
            future = True
            hours = _pick(draw, FUTURE_HOURS)
            record["occurred_at"] = moment(NOW + timedelta(hours=hours), _pick(draw, OFFSETS))
        else:
            hours = _pick(draw, PAST_HOURS)
            record["occurred_at"] = moment(NOW - timedelta(hours=hours), _pick(draw, OFFSETS))
    facility_slot = draw(st.integers(0, 1))
    good_facilities: list[Any] = [Ref("f", facility_slot, f) for f in ("plain", "lower", "padded")]
    if kind not in NEEDS_FACILITY:
        good_facilities.append(None)
    bad_facilities: list[Any] = (
        ["", "X" * 41, "F\x00"] if kind in NEEDS_FACILITY else ["X" * 41, "F\x00"]
    )
    if as_json:
        bad_facilities.append(["F1"])
    facility = choose("facility_code", good_facilities, bad_facilities, "facility_code")
    unknown = "unknown_facility" in targets and "facility_code" not in targets
    if unknown:
        facility = Ref("u", slot)
    if facility is not None:
        record["facility_code"] = facility
    sequence = choose(
        "sequence",
        GOOD_SEQUENCES + (GOOD_SEQUENCES_JSON if as_json else []),
        BAD_SEQUENCES + (BAD_SEQUENCES_JSON if as_json else []),
        "sequence",
    )
    if sequence is not None:
        record["sequence"] = sequence

    person: dict[str, Any] = {}
    owner = slot if a_slot is None else a_slot
    person["a_number"] = choose(
        "a_number",
        [Ref("a", owner, f) for f in A_FORMS + (["int"] if as_json else [])],
        BAD_A_NUMBERS + (BAD_A_NUMBERS_JSON if as_json else []),
        "person.a_number",
    )
    given, family = _pick(draw, GOOD_NAMES)
    if "names" in targets:
        which = draw(st.integers(0, 3))
        # The other part is given, or the reject would name the missing one instead.
        if which == 0:
            given, family, broken_part = (
                _pick(draw, BAD_NAME_PARTS),
                family or "Pérez",
                "given_name",
            )
        elif which == 1:
            given, family, broken_part = given or "Ana", _pick(draw, BAD_NAME_PARTS), "family_name"
        elif which == 2:
            given, family, broken_part = (
                "Ana",
                draw(st.sampled_from([None, "", "   "])),
                "family_name",
            )
        else:
            given, family, broken_part = (
                draw(st.sampled_from([None, "", "   "])),
                "Pérez",
                "given_name",
            )
        broken.add(f"person.{broken_part}")
    if given is not None:
        person["given_name"] = given
    if family is not None:
        person["family_name"] = family
    good_births = [b for b in GOOD_BIRTHS if b is None or b.strip() != birth_other_than]
    if birth_other_than is not None:
        good_births = [b for b in good_births if b is not None]
    birth = choose("date_of_birth", good_births, BAD_BIRTHS, "person.date_of_birth")
    if birth is not None:
        person["date_of_birth"] = birth
    country_sent, country = _pick(draw, GOOD_COUNTRIES)
    if "country_of_birth" in targets:
        broken.add("person.country_of_birth")
        country_sent, country = _pick(draw, BAD_COUNTRIES), None
    if country_sent is not None:
        person["country_of_birth"] = country_sent
    protection = choose(
        "protection",
        GOOD_PROTECTIONS,
        BAD_PROTECTIONS + (BAD_PROTECTIONS_JSON if as_json else []),
        "person.protection",
    )
    if protection is not None:
        person["protection"] = protection
    if "aliases" in targets:
        if as_json:
            aliases, field = _pick(draw, BAD_ALIASES_JSON)
        else:
            aliases, field = _pick(draw, BAD_ALIASES_CSV), "person.aliases"
        broken.add(field)
    else:
        aliases = _pick(draw, GOOD_ALIASES_JSON if as_json else GOOD_ALIASES_CSV)
    if aliases is not None:
        person["aliases"] = aliases
    record["person"] = person
    if "person" in targets:
        record["person"] = _pick(draw, ["A-012-345-678", [person], None])
        broken.add("person")
    details, details_broken = draw(event_details(kind, as_json, "details" in targets))
    if details_broken:
        broken.add(details_broken)
    if details is not None:
        record["details"] = details
    if as_json and draw(st.integers(0, 5)) == 0:
        record["extra"] = [1, {"x": None}]
    # A name or reason that holds a surrogate in a bad field is that field's reject, or
    # for a line that cannot be UTF-8, the line's (decided when it is written).
    return Draft(
        record=record,
        broken=frozenset(broken),
        unknown_facility=unknown and not broken,
        future=future,
        content=slot,
        a_slot=owner,
        birth=birth.strip() if isinstance(birth, str) and not broken else None,
        country=country if not broken else None,
    )


@st.composite
def event_details(
    draw: st.DrawFn, kind: str, as_json: bool, hostile: bool
) -> tuple[Any, str | None]:
    """The details of a `kind` event, and the field they break (when hostile)."""
    if hostile:
        if as_json and draw(st.booleans()):
            return _pick(draw, [["bond"], "bond", 5]), "details"
        options: list[tuple[Any, str]] = []
        if kind in ("booked", "escaped", "returned", "died"):
            options = [({"reason": "bond"}, "details.reason"), ({"court": "Eloy"}, "details.court")]
            if as_json:
                options.append(({"color": "red"}, "details.color"))
        elif kind == "transferred":
            options = [
                ({"from_facility_code": "X" * 41}, "details.from_facility_code"),
                ({"reason": "bond"}, "details.reason"),
            ]
        elif kind == "released":
            options = [
                ({"reason": "bail"}, "details.reason"),
                ({"reason": "bo\x00nd"}, "details.reason"),
                ({"destination_country": "MX"}, "details.destination_country"),
            ]
        elif kind == "removed":
            options = [
                ({}, "details.destination_country"),
                ({"destination_country": "Narnia"}, "details.destination_country"),
                ({"destination_country": "\ud800"}, "details.destination_country"),
            ]
        else:
            court, at = "Eloy", moment(NOW + timedelta(days=30), -420)
            options = [
                ({"hearing_at": at}, "details.court"),
                ({"court": "\x00", "hearing_at": at}, "details.court"),
                ({"court": court}, "details.hearing_at"),
                ({"court": court, "hearing_at": "9999-12-31T23:00:00-05:00"}, "details.hearing_at"),
                ({"court": court, "hearing_at": moment(NOW + timedelta(days=4000), 0)},
                 "details.hearing_at"),
                ({"court": court, "hearing_at": "2027-03-01T09:00:00"}, "details.hearing_at"),
            ]  # fmt: skip
        return _pick(draw, options)
    good: list[Any]
    if kind in ("booked", "escaped", "returned", "died"):
        good = [None, {}, {"reason": ""}, {"court": None}]
    elif kind == "transferred":
        good = [None, {"from_facility_code": Ref("f", 1)}, {"from_facility_code": "ELSEWHERE-9"}]
    elif kind == "released":
        good = [None, *({"reason": r} for r in RELEASE_REASONS)]
    elif kind == "removed":
        good = [{"destination_country": d} for d in DESTINATIONS]
    else:
        days = _pick(draw, [1, 30, 3000])
        good = [
            {"court": c, "hearing_at": moment(NOW + timedelta(days=days), _pick(draw, OFFSETS))}
            for c in COURTS
        ]
    return _pick(draw, good), None


JSONL_MANGLES = ["truncate", "tail", "array", "bad_utf8", "bom", "nul", "digits", "deep",
                 "scalar", "spaces"]  # fmt: skip


@st.composite
def feeds(draw: st.DrawFn, fmt: str) -> Feed:
    """Up to eight records: new ones, exact resends, resends with another spelling of the
    name, other events reusing an event id, and records contradicting an earlier one's
    date of birth."""
    entries: list[Entry] = []
    for slot in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["new", "new", "new", "copy", "respell", "reuse", "conflict"]))
        readable = [e for e in entries if not e.draft.broken and e.mangle is None]
        if op == "copy" and entries:
            entries.append(_pick(draw, entries))
            continue
        if op == "respell" and readable:
            earlier = _pick(draw, readable).draft
            person = dict(earlier.record["person"])
            person["given_name"], person["family_name"] = "Respelled", "Ñame"
            record = {**earlier.record, "person": person}
            entries.append(Entry(replace(earlier, record=record)))
            continue
        if op == "reuse" and readable:
            earlier = _pick(draw, readable).draft
            entries.append(Entry(draw(drafts(slot, fmt, id_ref=earlier.record["event_id"]))))
            continue
        with_birth = [e for e in readable if e.draft.birth is not None]
        if op == "conflict" and with_birth:
            earlier = _pick(draw, with_birth).draft
            draft = draw(
                drafts(
                    slot, fmt, hostile=False, a_slot=earlier.a_slot, birth_other_than=earlier.birth
                )
            )
            entries.append(Entry(draft))
            continue
        draft = draw(drafts(slot, fmt))
        mangle = None
        if draw(st.integers(0, 6)) == 0:
            mangle = _pick(draw, JSONL_MANGLES if fmt == "jsonl" else CSV_MANGLES)
        entries.append(Entry(draft, mangle, ascii=draw(st.booleans())))
    blanks = [b"", b"   ", b"\t"] if fmt == "jsonl" else [b"", b"  ", b",,,", b" , ,"]
    layout = draw(layouts(blanks))
    blank_at = draw(st.lists(st.integers(0, len(entries)), max_size=3))
    columns = list(CSV_COLUMNS)
    if draw(st.booleans()):
        columns = draw(st.permutations(columns))
    if draw(st.integers(0, 3)) == 0:
        columns.append("notes")
    names = [draw(st.sampled_from([c, c.upper(), f" {c} ", c.title()])) for c in columns]
    if draw(st.integers(0, 20)) == 0:
        # A header without a required column: the file is not a feed of events at all.
        missing = _pick(draw, REQUIRED_COLUMNS)
        names = [n for n, c in zip(names, columns, strict=True) if c != missing]
        columns = [c for c in columns if c != missing]
    return Feed(fmt, entries, layout, blank_at, draw(st.integers(0, 2)) == 0, columns, names,
                draw(st.booleans()))  # fmt: skip


def jsonl_line(entry: Entry, tag: int) -> bytes:
    text = json.dumps(render(entry.draft.record, tag), ensure_ascii=entry.ascii)
    data = _RAW.sub(r"\1", text).encode("utf-8", "surrogatepass")
    match entry.mangle:
        case "truncate":
            return data[: len(data) // 2]
        case "tail":
            return data + b' "x"'
        case "array":
            return b"[" + data + b"]"
        case "bad_utf8":
            return data[:1] + b"\xff" + data[1:]
        case "bom":
            return b"\xef\xbb\xbf" + data
        case "nul":
            return data[:1] + b"\x00" + data[1:]
        case "digits":
            return b'{"event_id": "x", "sequence": ' + b"9" * 5000 + b"}"
        case "deep":
            return b"[" * 50_000 + b"]" * 50_000
        case "scalar":
            return b'"just text"'
        case "spaces":
            return b"  " + data + b" \t"
    return data


def csv_cells(record: dict[str, Any]) -> dict[str, str]:
    """The nested record as the flat CSV row (docs/feeds.md)."""
    person = record.get("person") or {}
    details = record.get("details") or {}
    reverse = {v: k.removeprefix("details.") for k, v in CSV_COLUMN.items()}
    cells = {
        "event_id": record.get("event_id"),
        "kind": record.get("kind"),
        "occurred_at": record.get("occurred_at"),
        "facility_code": record.get("facility_code"),
        "sequence": record.get("sequence"),
        **{k: person.get(k) for k in ("a_number", "given_name", "family_name", "date_of_birth",
                                       "country_of_birth", "protection", "aliases")},
        **{column: details.get(name) for column, name in reverse.items()},
        "notes": "anything at all ✓",
    }  # fmt: skip
    return {k: "" if v is None else str(v) for k, v in cells.items()}


def csv_row(feed: Feed, entry: Entry, tag: int, last: bool) -> tuple[bytes, str | None]:
    cells = csv_cells(render(entry.draft.record, tag))
    values = [cells[c] for c in feed.columns]
    kind = feed.columns.index("kind") if "kind" in feed.columns else None
    return csv_record(values, feed.quote_all, entry.mangle, last, kind)


@dataclass
class Plan:
    written: Written
    unreadable: bool
    # Per record: its line, and what it must be if it reads (None: decided by the oracle).
    lines: list[int]
    line_level: list[Expect | None]


def plan(feed: Feed, tag: int) -> Plan:
    n = len(feed.entries)
    if feed.fmt == "jsonl":
        records = [jsonl_line(e, tag) for e in feed.entries]
        mangles = [e.mangle for e in feed.entries]
        header = None
    else:
        rows = [csv_row(feed, e, tag, i == n - 1) for i, e in enumerate(feed.entries)]
        records, mangles = [r for r, _ in rows], [m for _, m in rows]
        header = ",".join(feed.header_names).encode()
    written = write(header, records, feed.layout, feed.blank_at)
    overlong = overlong_lines(written) if feed.layout.via_file else set()
    line_level: list[Expect | None] = []
    for i, entry in enumerate(feed.entries):
        start = written.starts[i]
        spans = range(start, start + records[i].count(b"\n") + 1)
        if overlong.intersection(spans):
            # A quoted CSV field over several lines, one of them too long to read: that
            # line is passed over as blank and the rest read as records of their own,
            # which no oracle short of a CSV reader predicts. Not generated.
            assume(len(spans) == 1)
            line_level.append(LINE)
        elif feed.fmt == "jsonl":
            line_level.append(_jsonl_line_level(entry, mangles[i], start, feed.layout))
        else:
            line_level.append(_csv_line_level(entry, mangles[i]))
    if feed.fmt == "jsonl":
        unreadable = not _sniffs(written, overlong)
    else:
        unreadable = not set(REQUIRED_COLUMNS) <= set(feed.columns)
    # A file with a NUL in its first 4 KiB is taken for a binary file, not a feed.
    unreadable = unreadable or (feed.layout.via_file and b"\x00" in written.blob[:4096])
    return Plan(written, unreadable, written.starts, line_level)


def _jsonl_line_level(
    entry: Entry, mangle: str | None, start: int, layout: Layout
) -> Expect | None:
    if mangle == "bom" and start == 1 and not layout.bom:
        return None  # a byte-order mark that opens the file is dropped
    if mangle is not None and mangle != "spaces":
        return LINE
    if not entry.ascii and holds_surrogate(entry.draft.record):
        return LINE  # a lone surrogate has no UTF-8 form: the line is not UTF-8
    return None


def _csv_line_level(entry: Entry, mangle: str | None) -> Expect | None:
    if holds_surrogate(entry.draft.record):
        return LINE  # written as UTF-8 it would be, so its bytes are not UTF-8
    if mangle in ("stray_quote", "quote_then_text"):
        return rejected("kind", *(csv_field(f) for f in entry.draft.broken))
    if mangle is not None:
        return LINE
    return None


def _sniffs(written: Written, overlong: set[int]) -> bool:
    """Whether one of the first five non-blank lines is a JSON object (else the input is
    not JSON Lines at all, and nothing may change)."""
    seen = 0
    for number, line in enumerate(physical_lines(written.blob), start=1):
        if number in overlong:
            continue
        if number == 1:
            line = line.removeprefix(b"\xef\xbb\xbf")
        text = line.decode("utf-8", errors="replace")
        if not text.strip():
            continue
        seen += 1
        try:
            if isinstance(json.loads(text), dict):
                return True
        except (ValueError, RecursionError):
            pass
        if seen == 5:
            return False
    return False


@dataclass
class Known:
    """What the database holds after the records so far: event ids with their content,
    and each person's date and country of birth."""

    events: dict[str, int]
    births: dict[int, str]
    countries: dict[int, str]


def oracle(feed: Feed, p: Plan, tag: int, known: Known) -> tuple[dict[int, Expect], bool]:
    """What must become of each record, and whether the batch is held: the rules of
    docs/feeds.md, record by record in file order."""
    expects: dict[int, Expect] = {}
    held = False
    name = csv_field if feed.fmt == "csv" else str
    for entry, line, fixed in zip(feed.entries, p.lines, p.line_level, strict=True):
        draft = entry.draft
        if fixed is not None:
            expects[line] = fixed
            continue
        if draft.broken:
            expects[line] = rejected(*(name(f) for f in draft.broken))
            continue
        event_id = str(render(draft.record["event_id"], tag)).strip()
        if event_id in known.events:
            same = known.events[event_id] == draft.content
            expects[line] = DUPLICATE if same else rejected("event_id")
            continue
        if draft.unknown_facility:
            expects[line] = rejected("facility_code")
            continue
        contradicted = [
            field
            for field, told, on_record in (
                ("person.date_of_birth", draft.birth, known.births.get(draft.a_slot)),
                ("person.country_of_birth", draft.country, known.countries.get(draft.a_slot)),
            )
            if told is not None and on_record is not None and told != on_record
        ]
        if contradicted:
            expects[line] = rejected(*(name(f) for f in contradicted))
            continue
        expects[line] = APPLIED
        known.events[event_id] = draft.content
        if draft.birth is not None:
            known.births.setdefault(draft.a_slot, draft.birth)
        if draft.country is not None:
            known.countries.setdefault(draft.a_slot, draft.country)
        held = held or draft.future
    return expects, held


def run(engine: Engine, folder: Path, feed: Feed) -> None:
    tag = next_tag()
    load_facilities(engine, facility_code(tag, 0), facility_code(tag, 1))
    p = plan(feed, tag)
    note(f"tag {tag}; mangles {[e.mangle for e in feed.entries]}; via file {feed.layout.via_file}")
    note(f"lines: {[line[:2000] for line in p.written.lines]}")
    fmt = "jsonl" if feed.fmt == "jsonl" else "csv"
    known = Known({}, {}, {})
    for attempt in range(2 if feed.again else 1):
        before = batch_count(engine)
        if p.unreadable:
            with pytest.raises(UnreadableSourceError):
                lines = feed_input(p.written, feed.layout, folder, tag * 10 + attempt)
                ingest_events(engine, lines, source="feed", fmt=fmt, thresholds=Thresholds())
            assert batch_count(engine) == before, "an unreadable feed changed something"
            return
        lines = feed_input(p.written, feed.layout, folder, tag * 10 + attempt)
        summary = ingest_events(engine, lines, source="feed", fmt=fmt, thresholds=Thresholds())
        expects, held = oracle(feed, p, tag, known)
        check(engine, summary, Outcome(expects, frozenset({"held" if held else "completed"})))


@fuzz_settings(45)
@given(feed=feeds("jsonl"))
def test_any_json_lines_event_feed_is_accounted_for_record_by_record(
    engine: Engine, tmp_path: Path, feed: Feed
) -> None:
    run(engine, tmp_path, feed)


@fuzz_settings(45)
@given(feed=feeds("csv"))
def test_any_csv_event_feed_is_accounted_for_record_by_record(
    engine: Engine, tmp_path: Path, feed: Feed
) -> None:
    run(engine, tmp_path, feed)

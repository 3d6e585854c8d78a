"""Shared machinery of the feed property tests (tests/ingest/test_feed_properties_*.py).

Each property generates a feed of mostly valid records with hostile mutations, knows for
every record what must become of it (applied, a duplicate, or a reject naming one of a few
fields), runs it through the real ingest on SQLite and PostgreSQL, and checks the summary,
the batch row and the stored rejects against that, exactly.

Hypothesis replays examples inside one test function, on one database: every identifier
a feed holds (A-numbers, event ids, facility codes) is therefore made unique per example
from a counter (`Tags`), so no example sees another's people, events or facilities.
"""

import csv
import io
import itertools
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select

from safevine.ingest.source import file_lines
from safevine.ingest.summary import IngestSummary
from safevine.store.schema import ingest_batches, ingest_rejects
from tests.builders import NOW

# The statuses a batch of each kind may end with when nothing outside it fails (`failed`
# is for a lost connection, and `running` is never an end): events may be held by the
# hold rules, a roster held or refused as stale; protection and facility lists are
# always applied as far as they can be.
LEGAL_STATUSES: dict[str, frozenset[str]] = {
    "events": frozenset({"completed", "held"}),
    "roster": frozenset({"completed", "held", "refused"}),
    "protections": frozenset({"completed"}),
    "facilities": frozenset({"completed"}),
}

# A file read through `file_lines` with this limit makes the ~100 KB values overlong
# lines (rejected unread, field `line`), and leaves every other line whole.
FILE_LINE_LIMIT = 64 * 1024


def fuzz_settings(examples: int) -> settings:
    """Derandomized: every run tries the same examples, so a red CI run is reproduced by
    running the test again, and a green one means the same thing every time; coverage
    comes from the hostile catalogs, not from luck across runs. No example database
    either: a derandomized run has no use for one, and it would be written into the
    checkout. Set SAFEVINE_FUZZ_EXAMPLES=N to explore with N fresh random examples."""
    explore = int(os.environ.get("SAFEVINE_FUZZ_EXAMPLES", "0") or 0)
    return settings(
        max_examples=explore or examples,
        derandomize=not explore,
        database=None,
        deadline=None,
        print_blob=bool(explore),
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
            HealthCheck.filter_too_much,
        ],
    )


# Unique per example within a test process (each test function has its own database).
_tags = itertools.count(1)


def next_tag() -> int:
    return next(_tags)


@dataclass(frozen=True)
class Ref:
    """A value that holds the example's tag, written out just before the ingest: `kind`
    "a" an A-number, "f" a facility code, "u" a facility code never loaded, "e" an event
    id; `slot` tells apart those of one example; `form` is how it is spelled."""

    kind: str
    slot: int
    form: str = "plain"


WIDE_DIGITS = str.maketrans("0123456789", "０１２３４５６７８９")


def a_number(tag: int, slot: int) -> str:
    # One leading zero, so the eight-digit spelling (and the JSON number) is the same
    # person.
    return f"0{10_000 + tag % 90_000:05d}{slot:03d}"


def facility_code(tag: int, slot: int) -> str:
    return f"FZ{tag}-{slot}"


def _a_number_form(canonical: str, form: str) -> Any:
    d = canonical
    forms: dict[str, Any] = {
        "plain": d,
        "a": f"A{d}",
        "dashed": f"A-{d[:3]}-{d[3:6]}-{d[6:]}",
        "spaced": f"a {d[:3]} {d[3:6]} {d[6:]}",
        "eight": d[1:],
        "wide": d.translate(WIDE_DIGITS),
        "padded": f"  {d} ",
        "int": int(d),
    }
    return forms[form]


def _event_id_form(tag: int, slot: int, form: str) -> Any:
    base = f"ev-{tag}-{slot}"
    forms: dict[str, Any] = {
        "plain": base,
        "padded": f"  {base}\t",
        "emoji": f"{base}-🚀👩🏽‍⚖️",
        "rtl": f"{base}-\u05d0\u05d1\u200f",
        "combining": f"{base}-e\u0301\u0327",
        "max": base + "-" + "x" * (199 - len(base)),
        # Whole numbers are taken as their digits: unique too, and beyond 64 bits.
        "int": 2**64 + tag * 1000 + slot,
    }
    return forms[form]


def render(value: Any, tag: int) -> Any:
    """`value` with every Ref written out for this example."""
    if isinstance(value, Ref):
        if value.kind == "a":
            return _a_number_form(a_number(tag, value.slot), value.form)
        if value.kind == "f":
            code = facility_code(tag, value.slot)
            return {"plain": code, "lower": code.lower(), "padded": f" {code}  "}[value.form]
        if value.kind == "u":
            return f"NOPE{tag}-{value.slot}"
        if value.kind == "e":
            return _event_id_form(tag, value.slot, value.form)
        raise AssertionError(value)
    if isinstance(value, dict):
        return {k: render(v, tag) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, tag) for v in value]
    return value


def holds_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return any("\ud800" <= c <= "\udfff" for c in value)
    if isinstance(value, dict):
        return any(holds_surrogate(k) or holds_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(holds_surrogate(v) for v in value)
    return False


def moment(at: Any, offset_minutes: int) -> str:
    return str(at.astimezone(timezone(timedelta(minutes=offset_minutes))).isoformat())


# UTC offsets a feed may use, the extremes included.
OFFSETS = [0, -300, 840, -840, 330, -210, 60]


@dataclass(frozen=True)
class Expect:
    """What must become of one record: `applied`, `duplicate` or `rejected`, and for a
    reject the fields it may name (the first of them the reader checks)."""

    outcome: str
    fields: frozenset[str] = frozenset()


APPLIED = Expect("applied")
DUPLICATE = Expect("duplicate")


def rejected(*fields: str) -> Expect:
    return Expect("rejected", frozenset(fields))


LINE = rejected("line")


# Text any text field refuses, whatever the field (the reject names that field).
BAD_TEXT = [
    "A\x00na",
    "Ana\x07",
    "\x1b[31mAna",
    "Ana\x85Ruiz",
    "Ana\x7f",
    "A\ud800na",
    "\udfff",
]
# Text too long for any field: a little over the limit, and about 100 KB.
LONG_TEXT = ["x" * 201, "Ñ" * 100_000]
# Unicode any text field keeps: combining marks, right-to-left scripts and marks,
# emoji (with joiners and skin tones), wide characters.
ODD_TEXT = [
    "Jose\u0301 Lo\u0301pez",
    "محمد عبد الله",
    "\u05d0\u05d1\u05d9 \u200fכהן",
    "Zoë 👩🏽‍⚖️",
    "李小龍",
    "O\u2019Brien-Ñúñez",
]


# Values shared by the feeds, each good one with the forms it may take.

# Moments an event may have happened at: (text, dated in the future). The hold rules
# hold a batch with an event dated over ten minutes ahead.
PAST_HOURS = [1, 3, 30, 24 * 45, 24 * 364]
FUTURE_HOURS = [24, 24 * 200]
ODD_MOMENTS = [
    "2024-02-29T23:59:59+14:00",
    "2024-02-29T00:00:00-14:00",
    "1900-01-01T00:00:00Z",
    "1900-01-01T00:00:00-14:00",
    "2000-02-29T12:00:00.123456-05:00",
    "2020-06-01T12:00:00.123456789+00:00",
    "2025-01-01 10:00:00Z",
]
BAD_MOMENTS = [
    "0001-01-01T00:00:00+14:00",
    "0001-01-01T00:00:00-14:00",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59+14:00",
    "9999-12-31T23:59:59-14:00",
    "9999-12-31T23:59:59Z",
    "1899-12-31T23:59:59Z",
    "1900-01-01T00:00:00+14:00",
    moment(NOW + timedelta(days=400), -300),
    (NOW - timedelta(hours=2)).replace(tzinfo=None).isoformat(),
    NOW.date().isoformat(),
    "2023-02-29T12:00:00Z",
    "2026-11-25T25:00:00Z",
    "2026-11-25T12:00:00+24:00",
    "yesterday",
    "",
    "  ",
    *BAD_TEXT,
    *LONG_TEXT,
]
A_FORMS = ["plain", "a", "dashed", "spaced", "eight", "wide", "padded"]
BAD_A_NUMBERS: list[Any] = [
    "",
    "A-123",
    "1234567890",
    "000000000",
    "A--012345678",
    "012345678\x00",
    "٠١٢٣٤٥٦٧٨",
    "A 012 345 678 9",
    "\ud800012345678",
]
# (given, family) pairs a person may have: none, or both, in any script. Fifty `ß` fold
# (for matching) to a hundred `s`, as many as a name may have.
GOOD_NAMES: list[tuple[Any, Any]] = [
    ("Ana", "Pérez"),
    (None, None),
    ("Jose\u0301", "Lo\u0301pez Garci\u0301a"),
    ("محمد", "عبد الله"),
    ("\u05d0\u05d1\u05d9", "\u05db\u05d4\u05df"),
    ("Zoë😀", "Ñúñez"),
    ("李", "小龍"),
    ("O\u2019Brien", "Nguye\u0302\u0303n"),
    ("a" * 100, "b" * 100),
    ("ß" * 50, "Straße"),
]
# A name part any reader refuses, whichever part it is.
BAD_NAME_PARTS: list[Any] = [
    *BAD_TEXT,
    "Ana\u200dMaría",
    "\u202eAna",
    "123",
    "😀",
    "a" * 101,
    "\ufdfa" * 10,
    "ß" * 51,
    "Ana\nMaría",
    "Ana\r\nMaría",
    LONG_TEXT[1],
]
GOOD_BIRTHS = [None, "1990-05-01", "2000-02-29", "1900-01-01", "1988-03-14", " 1975-12-31 "]
BAD_BIRTHS: list[Any] = [
    "1900-02-29",
    "1899-12-31",
    "0001-01-01",
    "9999-12-31",
    (NOW + timedelta(days=40)).date().isoformat(),
    "1990-13-01",
    "01/05/1990",
    *BAD_TEXT[:3],
]
# (as sent, as kept)
GOOD_COUNTRIES: list[tuple[Any, Any]] = [
    (None, None),
    ("MX", "MX"),
    ("MEX", "MX"),
    ("Mexico", "MX"),
    ("México", "MX"),
    ("mx", "MX"),
    ("Honduras", "HN"),
    ("CN", "CN"),
]
BAD_COUNTRIES: list[Any] = ["Narnia", "ZZ", "M\x00X", "x" * 201]


@dataclass
class Layout:
    """How a feed is written out: what goes between records and at the end."""

    blanks: list[bytes]
    crlf: bool
    final_newline: bool
    bom: bool
    via_file: bool


@st.composite
def layouts(draw: st.DrawFn, blank_lines: Sequence[bytes]) -> Layout:
    return Layout(
        blanks=draw(st.lists(st.sampled_from(blank_lines), max_size=3)),
        crlf=draw(st.booleans()),
        final_newline=draw(st.booleans()),
        bom=draw(st.booleans()),
        via_file=draw(st.booleans()),
    )


@dataclass
class Written:
    """A feed as bytes lines, and where each record starts."""

    lines: list[bytes]
    starts: list[int]
    blob: bytes = b""


def write(
    header: bytes | None,
    records: Sequence[bytes],
    layout: Layout,
    blank_at: Sequence[int],
) -> Written:
    """The feed's lines: the header, then each record (bytes that may span lines, without
    their final line break), with a blank line before record i for each i in `blank_at`.
    Lines are split as a file is read: at b"\\n" only."""
    end = b"\r\n" if layout.crlf else b"\n"
    parts: list[bytes] = []
    starts: list[int] = []
    line = 1
    if header is not None:
        parts.append(header + end)
        line += 1
    for i, record in enumerate(records):
        for _ in range(blank_at.count(i)):
            blank = layout.blanks[i % len(layout.blanks)] if layout.blanks else b""
            parts.append(blank + end)
            line += 1
        starts.append(line)
        parts.append(record + end)
        line += (record + end).count(b"\n")
    for _ in range(blank_at.count(len(records))):
        parts.append((layout.blanks[0] if layout.blanks else b"") + end)
    blob = b"".join(parts)
    if not layout.final_newline and blob.endswith(end) and records:
        blob = blob[: -len(end)]
    if layout.bom:
        blob = b"\xef\xbb\xbf" + blob
    return Written(physical_lines(blob), starts, blob)


def physical_lines(blob: bytes) -> list[bytes]:
    pieces = blob.split(b"\n")
    lines = [p + b"\n" for p in pieces[:-1]]
    if pieces[-1]:
        lines.append(pieces[-1])
    return lines


def overlong_lines(written: Written, limit: int = FILE_LINE_LIMIT) -> set[int]:
    """The numbers of the lines `file_lines` passes over as too long."""
    return {n for n, line in enumerate(written.lines, start=1) if len(line.rstrip(b"\n")) > limit}


def feed_input(written: Written, layout: Layout, folder: Path, tag: int) -> Iterable[bytes]:
    """The lines as the CLI reads a file (`file_lines`, with a small line limit), or as
    the HTTP feed and the tests pass them (a list of bytes)."""
    if not layout.via_file:
        return written.lines
    path = folder / f"feed-{tag}.txt"
    path.write_bytes(written.blob)
    return file_lines(path, max_line_bytes=FILE_LINE_LIMIT)


# Changes to a CSV record's line as a whole: a cell too many or too few, bytes that are
# not UTF-8, U+FFFD (what undecodable bytes become, so refused too), a carriage return
# alone in an unquoted field, a quote inside a field or before more text (both read as
# text), and a quoted field never closed (the rest of the file is that field).
CSV_MANGLES = ["extra_cell", "missing_cell", "bad_utf8", "replacement_char", "lone_cr",
               "stray_quote", "quote_then_text", "unterminated"]  # fmt: skip


def csv_record(
    values: list[str], quote_all: bool, mangle: str | None, last: bool, quote_in: int | None
) -> tuple[bytes, str | None]:
    """A CSV record of `values`, changed by `mangle` (a stray quote goes into cell
    `quote_in`), and the change made: those that need a record without quotes (or, for
    an unterminated quote, the last record) fall back to an extra cell."""
    plain = not quote_all and not any(re.search(r'[",\r\n]', v) for v in values)
    if mangle in ("lone_cr", "stray_quote", "quote_then_text") and not plain:
        mangle = "extra_cell"
    if mangle in ("stray_quote", "quote_then_text") and (
        quote_in is None or len(values[quote_in].strip()) < 2
    ):
        mangle = "extra_cell"
    if mangle == "unterminated" and not (plain and last):
        mangle = "extra_cell"
    if mangle == "missing_cell":
        values = values[:-1]
    if mangle in ("stray_quote", "quote_then_text"):
        assert quote_in is not None
        values = list(values)
        cell = values[quote_in]
        values[quote_in] = (cell[:1] + '"' + cell[1:]) if mangle == "stray_quote" else f'"{cell}"x'
        text = ",".join(values)
    else:
        buffer = io.StringIO()
        quoting = csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL
        # The writer quotes a field with a line break only if the break is part of its
        # line terminator: the one it writes is cut off again.
        csv.writer(buffer, quoting=quoting, lineterminator="\r\n").writerow(values)
        text = buffer.getvalue().removesuffix("\r\n")
    data = text.encode("utf-8", "surrogatepass")
    match mangle:
        case "extra_cell":
            data += b",extra"
        case "bad_utf8":
            data = b"\xff" + data
        case "replacement_char":
            data = "\ufffd".encode() + data
        case "lone_cr":
            data = data[:1] + b"\r" + data[1:]
        case "unterminated":
            data = b'"' + data
    return data, mangle


@dataclass
class Outcome:
    """The expected end of one ingest."""

    expects: dict[int, Expect]  # by line
    statuses: frozenset[str]
    derived_events: int | None = None
    counts_add_up: bool = True
    notes: list[str] = field(default_factory=list)


def batch_count(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(select(func.count()).select_from(ingest_batches)).scalar_one()
        )


def check(engine: Engine, summary: IngestSummary, want: Outcome) -> None:
    """The summary, the batch row and the stored rejects say exactly what `want` says."""
    assert summary.status in LEGAL_STATUSES[summary.kind], summary.status
    assert summary.status in want.statuses, (summary.status, want.statuses, summary.notes)
    expects = want.expects
    outcomes = [e.outcome for e in expects.values()]
    assert summary.total == len(expects), (summary.total, len(expects))
    assert summary.applied == outcomes.count("applied"), _diff(summary, expects)
    assert summary.duplicates == outcomes.count("duplicate"), _diff(summary, expects)
    assert summary.rejected == outcomes.count("rejected"), _diff(summary, expects)
    if want.counts_add_up:
        assert summary.total == summary.applied + summary.duplicates + summary.rejected
    if want.derived_events is not None:
        assert summary.derived_events == want.derived_events, summary.derived_events
    with engine.connect() as connection:
        batch = connection.execute(
            select(ingest_batches).where(ingest_batches.c.id == summary.batch_id)
        ).one()
        stored = connection.execute(
            select(
                ingest_rejects.c.line,
                ingest_rejects.c.field,
                ingest_rejects.c.reason,
                ingest_rejects.c.raw,
            )
            .where(ingest_rejects.c.batch_id == summary.batch_id)
            .order_by(ingest_rejects.c.line, ingest_rejects.c.id)
        ).all()
    assert batch.status == summary.status
    assert (batch.total, batch.applied, batch.duplicates, batch.rejected) == (
        summary.total,
        summary.applied,
        summary.duplicates,
        summary.rejected,
    )
    assert batch.derived_events == summary.derived_events
    assert batch.finished_at is not None
    # Every reject is stored, once, at the line of a record that was to be rejected, and
    # names one of the fields at fault in that record.
    assert len(stored) == summary.rejected, (len(stored), summary.rejected)
    lines = [r.line for r in stored]
    assert len(set(lines)) == len(lines), f"a line rejected twice: {lines}"
    wanted = {line for line, e in expects.items() if e.outcome == "rejected"}
    assert set(lines) == wanted, f"rejects at {sorted(lines)}\n{_diff(summary, expects)}"
    for r in stored:
        assert r.field in expects[r.line].fields, (r.line, r.field, r.reason, expects[r.line])
        assert r.reason.strip(), r
        for text in (r.field, r.reason, r.raw):
            assert "\x00" not in text
        assert len(r.raw) <= 2000 and len(r.field) <= 60
    # The summary lists the first 100 as they were found (a roster finds repeated people
    # last), each as stored.
    shown = sorted((r.line, r.field) for r in summary.rejects)
    assert set(shown) <= {(r.line, r.field) for r in stored}, shown
    assert len(shown) == min(summary.rejected, 100)


def _diff(summary: IngestSummary, expects: Mapping[int, Expect]) -> str:
    got = {r.line: r.field for r in summary.rejects}
    rows = [
        f"line {line}: want {e.outcome} {sorted(e.fields)}, got {got.get(line, '-')}"
        for line, e in sorted(expects.items())
    ]
    return "\n".join([f"summary {summary.to_dict()}", *rows])

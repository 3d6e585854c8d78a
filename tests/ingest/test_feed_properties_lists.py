"""Protection and facility lists against any rows: every row is applied, a duplicate, or a
reject naming its line and a field at fault, the batch ends `completed`, and for
protection lists the one promise that matters most holds row by row: a row that says
`protected` protects its person, even when the row is rejected for another field. On
SQLite and PostgreSQL. See tests/ingest/feed_properties.py.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, note
from hypothesis import strategies as st
from sqlalchemy import Engine

from safevine.ingest.facilities import ingest_facilities
from safevine.ingest.protections import ingest_protections
from safevine.ingest.source import UnreadableSourceError
from tests.builders import NOW
from tests.ingest.feed_properties import (
    A_FORMS,
    APPLIED,
    BAD_A_NUMBERS,
    BAD_TEXT,
    DUPLICATE,
    LINE,
    LONG_TEXT,
    ODD_TEXT,
    Expect,
    Layout,
    Outcome,
    Ref,
    a_number,
    batch_count,
    check,
    csv_record,
    feed_input,
    fuzz_settings,
    holds_surrogate,
    layouts,
    moment,
    next_tag,
    overlong_lines,
    rejected,
    render,
    write,
)
from tests.ingest.test_protections_feed import protection_of

# Row-level damage whose outcome needs no CSV reader to predict: the row is a `line`.
MANGLES = ["extra_cell", "missing_cell", "bad_utf8", "replacement_char"]
BLANKS = [b"", b"  ", b",,,", b" , ,"]


@dataclass
class Row:
    """One generated row: its cells (Refs where the example's tag goes), the fields made
    bad, and a row-level mangle."""

    cells: dict[str, Any]
    broken: frozenset[str]
    mangle: str | None


@dataclass
class ListFeed:
    header: list[str]
    rows: list[Row]
    layout: Layout
    blank_at: list[int]
    quote_all: bool


def _field(draw: st.DrawFn, name: str, good: list[Any], bad: list[Any], broken: set[str]) -> Any:
    if bad and draw(st.integers(0, 5)) == 0:
        broken.add(name)
        return draw(st.sampled_from(bad))
    return draw(st.sampled_from(good))


# --- protection lists ---------------------------------------------------------------

GOOD_STATUSES = ["protected", "cleared", " Protected ", "CLEARED"]
BAD_STATUSES = ["", "maybe", "protect", "clear", *BAD_TEXT[:3], "x" * 201]
GOOD_AS_OF = [
    NOW.date().isoformat(),
    "2026-01-15T10:00:00-05:00",
    "1900-01-01T00:00:00Z",
    moment(NOW, 840),
    moment(NOW, -840),
]
BAD_AS_OF = [
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "9999-12-31",
    "1899-12-31T23:59:59Z",
    "2026-11-25T25:00:00Z",
    "2026-11-25T10:00:00",
    "2023-02-29",
    "yesterday",
    "",
    *BAD_TEXT[:3],
    LONG_TEXT[1],
]
GOOD_SOURCES = ["", "screening desk", *ODD_TEXT]
BAD_SOURCES = [*BAD_TEXT, "x" * 201]


@st.composite
def protection_lists(draw: st.DrawFn) -> ListFeed:
    rows: list[Row] = []
    for i in range(draw(st.integers(1, 8))):
        broken: set[str] = set()
        # Now and then a row for a person an earlier row named.
        slot = draw(st.integers(0, i - 1)) if i and draw(st.integers(0, 3)) == 0 else i
        cells = {
            "a_number": _field(
                draw,
                "a_number",
                [Ref("a", slot, form) for form in A_FORMS],
                BAD_A_NUMBERS,
                broken,
            ),
            "status": _field(draw, "status", GOOD_STATUSES, BAD_STATUSES, broken),
            "as_of": _field(draw, "as_of", GOOD_AS_OF, BAD_AS_OF, broken),
            "source": _field(draw, "source", GOOD_SOURCES, BAD_SOURCES, broken),
        }
        mangle = draw(st.sampled_from(MANGLES)) if draw(st.integers(0, 7)) == 0 else None
        rows.append(Row(cells, frozenset(broken), mangle))
    return ListFeed(
        ["a_number", "status", "as_of", "source"],
        rows,
        draw(layouts(BLANKS)),
        draw(st.lists(st.integers(0, len(rows)), max_size=3)),
        draw(st.booleans()),
    )


@dataclass
class Written:
    lines: list[int]
    line_level: list[Expect | None]
    feed: Any  # the feed as written, and how it is read (see `feed_lines`)
    binary: bool

    def feed_lines(self, folder: Path, tag: int) -> Any:
        """The lines as the ingest reads them (a file is opened here, as the CLI does)."""
        written, layout = self.feed
        return feed_input(written, layout, folder, tag)


def _write(feed: ListFeed, tag: int) -> Written:
    records, line_level = [], []
    for i, row in enumerate(feed.rows):
        values = [str(render(row.cells[name], tag)) for name in feed.header]
        data, mangle = csv_record(values, feed.quote_all, row.mangle, i == len(feed.rows) - 1, 0)
        records.append(data)
        surrogate = holds_surrogate(values)
        line_level.append(LINE if mangle is not None or surrogate else None)
    written = write(",".join(feed.header).encode(), records, feed.layout, feed.blank_at)
    if feed.layout.via_file:
        overlong = overlong_lines(written)
        line_level = [
            LINE if start in overlong else fixed
            for start, fixed in zip(written.starts, line_level, strict=True)
        ]
    binary = feed.layout.via_file and b"\x00" in written.blob[:4096]
    return Written(written.starts, line_level, (written, feed.layout), binary)


def _protection_oracle(
    feed: ListFeed, w: Written, tag: int
) -> tuple[dict[int, Expect], dict[str, str]]:
    """What becomes of each row, and each named person's protection afterwards. Readable
    rows apply in order; the rejected rows that do not say `cleared` protect their
    person (fail closed) once the readable rows of their chunk are applied."""
    expects: dict[int, Expect] = {}
    state: dict[str, str] = {}
    claims: list[str] = []
    for row, line, fixed in zip(feed.rows, w.lines, w.line_level, strict=True):
        person = a_number(tag, row.cells["a_number"].slot) if "a_number" not in row.broken else ""
        if fixed is not None:
            expects[line] = fixed
            continue
        if row.broken:
            expects[line] = rejected(*row.broken)
            if person and str(row.cells["status"]).strip().lower() != "cleared":
                claims.append(person)
            continue
        status = str(row.cells["status"]).strip().lower()
        before = state.get(person, "unscreened")
        if status == before:
            expects[line] = DUPLICATE
        elif status == "cleared" and before == "protected":
            expects[line] = rejected("status")
        else:
            expects[line] = APPLIED
            state[person] = status
    for person in claims:
        state[person] = "protected"
    return expects, state


@fuzz_settings(40)
@given(feed=protection_lists())
def test_any_protection_list_protects_whom_it_names_row_by_row(
    engine: Engine, tmp_path: Path, feed: ListFeed
) -> None:
    tag = next_tag()
    w = _write(feed, tag)
    note(f"tag {tag}; rows {[(r.broken, r.mangle) for r in feed.rows]}")
    if w.binary:
        before = batch_count(engine)
        with pytest.raises(UnreadableSourceError):
            ingest_protections(engine, w.feed_lines(tmp_path, tag), source="fuzz.csv")
        assert batch_count(engine) == before
        return
    expects, state = _protection_oracle(feed, w, tag)
    summary = ingest_protections(engine, w.feed_lines(tmp_path, tag), source="fuzz.csv")
    check(engine, summary, Outcome(expects, frozenset({"completed"})))
    for person, protection in state.items():
        assert protection_of(engine, person) == protection, person


# --- facility lists -----------------------------------------------------------------

GOOD_NAMES = ["Eloy Detention Center", *ODD_TEXT, "x" * 200]
BAD_NAMES = ["", *BAD_TEXT, "x" * 201, LONG_TEXT[1]]
GOOD_STATES = ["", "AZ", "tx", "PR"]
BAD_STATES = ["ZZ", "Arizona", "A\x00"]
GOOD_ZONES = ["", "America/Chicago", "Pacific/Guam"]
BAD_ZONES = ["America", "Mars/Base", "../../etc/passwd", "/usr/share/zoneinfo/UTC", "UTC\x00"]
GOOD_PHONES = ["", "+1 520 555 0100", "(520) 555-0100"]
BAD_PHONES = ["5" * 41, "\x1b[2J"]
BAD_CODES = ["", "X" * 41, "F\x00", "F!", "ÄB", " - "]


@st.composite
def facility_lists(draw: st.DrawFn) -> ListFeed:
    rows: list[Row] = []
    for i in range(draw(st.integers(1, 8))):
        broken: set[str] = set()
        slot = draw(st.integers(0, i - 1)) if i and draw(st.integers(0, 4)) == 0 else i
        cells = {
            "code": _field(
                draw, "code", [Ref("f", slot, f) for f in ("plain", "lower", "padded")],
                BAD_CODES, broken,
            ),
            "name": _field(draw, "name", GOOD_NAMES, BAD_NAMES, broken),
            "state": _field(draw, "state", GOOD_STATES, BAD_STATES, broken),
            "time_zone": _field(draw, "time_zone", GOOD_ZONES, BAD_ZONES, broken),
            "phone": _field(draw, "phone", GOOD_PHONES, BAD_PHONES, broken),
        }  # fmt: skip
        mangle = draw(st.sampled_from(MANGLES)) if draw(st.integers(0, 7)) == 0 else None
        rows.append(Row(cells, frozenset(broken), mangle))
    return ListFeed(
        ["code", "name", "state", "time_zone", "phone"],
        rows,
        draw(layouts(BLANKS)),
        draw(st.lists(st.integers(0, len(rows)), max_size=3)),
        draw(st.booleans()),
    )


def _facility_oracle(feed: ListFeed, w: Written) -> dict[int, Expect]:
    """A readable row is applied, unless a later readable row of the same list gives the
    same code (the last one is kept, the earlier ones are rejected naming the code)."""
    expects: dict[int, Expect] = {}
    last: dict[int, int] = {}
    for row, line, fixed in zip(feed.rows, w.lines, w.line_level, strict=True):
        if fixed is None and not row.broken:
            last[row.cells["code"].slot] = line
    for row, line, fixed in zip(feed.rows, w.lines, w.line_level, strict=True):
        if fixed is not None:
            expects[line] = fixed
        elif row.broken:
            expects[line] = rejected(*row.broken)
        else:
            kept = last[row.cells["code"].slot] == line
            expects[line] = APPLIED if kept else rejected("code")
    return expects


@fuzz_settings(40)
@given(feed=facility_lists())
def test_any_facility_list_is_accounted_for_row_by_row(
    engine: Engine, tmp_path: Path, feed: ListFeed
) -> None:
    tag = next_tag()
    w = _write(feed, tag)
    note(f"tag {tag}; rows {[(r.broken, r.mangle) for r in feed.rows]}")
    if w.binary:
        before = batch_count(engine)
        with pytest.raises(UnreadableSourceError):
            ingest_facilities(engine, w.feed_lines(tmp_path, tag), source="fuzz.csv")
        assert batch_count(engine) == before
        return
    expects = _facility_oracle(feed, w)
    summary = ingest_facilities(engine, w.feed_lines(tmp_path, tag), source="fuzz.csv")
    check(engine, summary, Outcome(expects, frozenset({"completed"})))
    # The same list again changes nothing: what was applied is now a duplicate.
    (tmp_path / "again").mkdir(exist_ok=True)
    twice = {line: DUPLICATE if e == APPLIED else e for line, e in expects.items()}
    lines = w.feed_lines(tmp_path / "again", tag)
    summary = ingest_facilities(engine, lines, source="fuzz-again.csv")
    check(engine, summary, Outcome(twice, frozenset({"completed"})))

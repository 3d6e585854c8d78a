"""Roster snapshots against any rows: every row is applied (or, sent again, a duplicate),
or a reject naming its line and a field at fault; the snapshot derives one booking per
person it lists, an older one is refused and changes nothing, and a later one that lists
fewer people releases the others and is held when the hold rules say so. On SQLite and
PostgreSQL. See tests/ingest/feed_properties.py.
"""

import itertools
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, event, given, note
from hypothesis import strategies as st
from sqlalchemy import Engine

from safevine.domain.batch_thresholds import Thresholds, shrank, too_many_leaving
from safevine.ingest.roster import ingest_roster
from safevine.ingest.source import UnreadableSourceError
from tests.builders import NOW, ROSTER_HEADER, load_facilities
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
    GOOD_BIRTHS,
    GOOD_COUNTRIES,
    GOOD_NAMES,
    LINE,
    OFFSETS,
    Expect,
    Layout,
    Outcome,
    Ref,
    Written,
    a_number,
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
    rejected,
    render,
    write,
)

# The snapshot's moment, another one, and one long past (leap day, far east of UTC).
BASE = (NOW - timedelta(hours=2)).replace(microsecond=0)
OTHER = BASE - timedelta(hours=1)
LEAP_DAY = "2024-02-29T12:00:00+14:00"
LEAP_DAY_AT = datetime(2024, 2, 28, 22, tzinfo=UTC)
REFUSED = Expect("refused")


@dataclass(frozen=True)
class When:
    """A row's snapshot_at: the snapshot's moment or another, in some UTC offset (moved
    with the snapshot when it is sent as an older one), or a fixed text."""

    moment: str  # "base", "other", or "text"
    offset: int = 0
    text: str = ""

    def written(self, shift: timedelta) -> str:
        if self.moment == "text":
            return self.text
        at = (BASE if self.moment == "base" else OTHER) + shift
        return moment(at, self.offset)

    def instant(self, shift: timedelta) -> datetime | None:
        if self.moment == "text":
            return LEAP_DAY_AT if self.text == LEAP_DAY else None
        return (BASE if self.moment == "base" else OTHER) + shift


@dataclass(frozen=True)
class Row:
    when: When
    facility: Any
    person: Any
    given: Any
    family: Any
    birth: Any
    country: Any
    # Fields a reader refuses; empty when the row reads.
    broken: frozenset[str]
    unknown_facility: bool
    facility_slot: int
    a_slot: int
    mangle: str | None = None


@dataclass
class Roster:
    rows: list[Row]
    columns: list[str]
    header_names: list[str]
    quote_all: bool
    layout: Layout
    blank_at: list[int]
    # Later snapshots: the same file again, the same an hour older, and one an hour
    # newer listing only those of the people listed first whom `stay` keeps.
    again: bool
    older: bool
    stay: list[bool]


def _pick(draw: st.DrawFn, options: list[Any]) -> Any:
    return draw(st.sampled_from(options))


@st.composite
def rows(draw: st.DrawFn, slot: int, a_slot: int | None = None) -> Row:
    """A row listing person `slot` (or `a_slot`, listed again): valid but for up to two
    fields when hostile, each given a value the reader refuses."""
    fields = ["snapshot_at", "facility_code", "unknown_facility", "a_number", "names",
              "date_of_birth", "country_of_birth"]  # fmt: skip
    hostile = draw(st.integers(0, 4)) < 2
    targets = (
        set(draw(st.sets(st.sampled_from(fields), min_size=1, max_size=2))) if hostile else set()
    )
    broken: set[str] = set()
    if "snapshot_at" in targets:
        when = When("text", text=_pick(draw, BAD_MOMENTS))
        broken.add("snapshot_at")
    else:
        kind = draw(st.integers(0, 9))
        if kind == 9:
            when = When("text", text=LEAP_DAY)
        else:
            when = When("other" if kind == 8 else "base", _pick(draw, OFFSETS))
    facility_slot = draw(st.integers(0, 1))
    facility: Any = Ref("f", facility_slot, _pick(draw, ["plain", "lower", "padded"]))
    if "facility_code" in targets:
        facility = _pick(draw, ["", "X" * 41, "F\x00", *BAD_TEXT[:3]])
        broken.add("facility_code")
    unknown = "unknown_facility" in targets and "facility_code" not in targets
    if unknown:
        facility = Ref("u", slot)
    owner = slot if a_slot is None else a_slot
    person: Any = Ref("a", owner, _pick(draw, A_FORMS))
    if "a_number" in targets:
        person = _pick(draw, BAD_A_NUMBERS)
        broken.add("a_number")
    given, family = _pick(draw, GOOD_NAMES)
    if "names" in targets:
        which = draw(st.integers(0, 2))
        if which == 0:
            given, family = _pick(draw, BAD_NAME_PARTS), family or "Pérez"
            broken.add("given_name")
        elif which == 1:
            given, family = given or "Ana", _pick(draw, BAD_NAME_PARTS)
            broken.add("family_name")
        else:
            given, family = "Ana", None
            broken.add("family_name")
    birth = _pick(draw, GOOD_BIRTHS)
    if "date_of_birth" in targets:
        birth = _pick(draw, BAD_BIRTHS)
        broken.add("date_of_birth")
    country = _pick(draw, GOOD_COUNTRIES)[0]
    if "country_of_birth" in targets:
        country = _pick(draw, BAD_COUNTRIES)
        broken.add("country_of_birth")
    mangle = _pick(draw, CSV_MANGLES) if draw(st.integers(0, 7)) == 0 else None
    return Row(when, facility, person, given, family, birth, country, frozenset(broken),
               unknown and not broken, facility_slot, owner, mangle)  # fmt: skip


@st.composite
def rosters(draw: st.DrawFn) -> Roster:
    listed: list[Row] = []
    for slot in range(draw(st.integers(1, 12))):
        if listed and draw(st.integers(0, 5)) == 0:
            # The same person listed again: the same row, or another.
            earlier = _pick(draw, listed)
            again = earlier if draw(st.booleans()) else draw(rows(slot, earlier.a_slot))
            listed.append(again)
        else:
            listed.append(draw(rows(slot)))
    columns = list(ROSTER_HEADER)
    if draw(st.booleans()):
        columns = draw(st.permutations(columns))
    if draw(st.integers(0, 3)) == 0:
        # Any other column sends every row through the general reader.
        columns.append("notes")
    names = [_pick(draw, [c, c.upper(), f" {c} ", c.title()]) for c in columns]
    if draw(st.integers(0, 20)) == 0:
        missing = _pick(draw, ["snapshot_at", "facility_code", "a_number"])
        names = [n for n, c in zip(names, columns, strict=True) if c != missing]
        columns = [c for c in columns if c != missing]
    return Roster(
        rows=listed,
        columns=columns,
        header_names=names,
        quote_all=draw(st.integers(0, 3)) == 0,
        layout=draw(layouts([b"", b"  ", b",,,", b" , , "])),
        blank_at=draw(st.lists(st.integers(0, len(listed)), max_size=3)),
        again=draw(st.booleans()),
        older=draw(st.booleans()),
        stay=draw(st.lists(st.booleans(), min_size=len(listed), max_size=len(listed))),
    )


def cells(row: Row, tag: int, shift: timedelta) -> dict[str, str]:
    values = {
        "snapshot_at": row.when.written(shift),
        "facility_code": render(row.facility, tag),
        "a_number": render(row.person, tag),
        "given_name": row.given,
        "family_name": row.family,
        "date_of_birth": row.birth,
        "country_of_birth": row.country,
        "notes": "whatever ✓",
    }
    return {k: "" if v is None else str(v) for k, v in values.items()}


@dataclass
class Plan:
    written: Written
    unreadable: bool
    lines: list[int]
    line_level: list[Expect | None]
    # A stray quote in the facility code makes it a code no facility has.
    unknown: list[bool]


def plan(roster: Roster, tag: int, shift: timedelta) -> Plan:
    n = len(roster.rows)
    records, line_level, unknown = [], [], []
    at_code = roster.columns.index("facility_code") if "facility_code" in roster.columns else None
    for i, row in enumerate(roster.rows):
        values = cells(row, tag, shift)
        data, mangle = csv_record(
            [values[c] for c in roster.columns], roster.quote_all, row.mangle, i == n - 1, at_code
        )
        records.append(data)
        unknown.append(row.unknown_facility or mangle in ("stray_quote", "quote_then_text"))
        if holds_surrogate(values) or mangle not in (None, "stray_quote", "quote_then_text"):
            line_level.append(LINE)
        else:
            line_level.append(None)
    header = ",".join(roster.header_names).encode()
    written = write(header, records, roster.layout, roster.blank_at)
    if roster.layout.via_file:
        overlong = overlong_lines(written)
        for i, start in enumerate(written.starts):
            spans = range(start, start + records[i].count(b"\n") + 1)
            if overlong.intersection(spans):
                assume(len(spans) == 1)  # see the events property
                line_level[i] = LINE
    unreadable = not {"snapshot_at", "facility_code", "a_number"} <= set(roster.columns)
    unreadable = unreadable or (roster.layout.via_file and b"\x00" in written.blob[:4096])
    return Plan(written, unreadable, written.starts, line_level, unknown)


@dataclass
class Listed:
    """What a snapshot read: the moment it is of, each row's fate, and the people it
    lists by facility."""

    taken_at: datetime | None
    expects: dict[int, Expect]
    people: dict[int, list[int]]


def read(roster: Roster, p: Plan, shift: timedelta) -> Listed:
    """The rules of docs/feeds.md, row by row: the snapshot is of the moment of its first
    row that reads; a row of another moment, an unknown facility, or a person listed
    already is a reject."""
    taken_at = None
    for row, fixed in zip(roster.rows, p.line_level, strict=True):
        if fixed is None and not row.broken:
            taken_at = row.when.instant(shift)
            break
    expects: dict[int, Expect] = {}
    people: dict[int, list[int]] = {}
    seen: set[int] = set()
    for row, line, fixed, unknown in zip(
        roster.rows, p.lines, p.line_level, p.unknown, strict=True
    ):
        if fixed is not None:
            expects[line] = fixed
        elif row.broken:
            expects[line] = rejected(*row.broken)
        elif row.when.instant(shift) != taken_at:
            expects[line] = rejected("snapshot_at")
        elif unknown:
            expects[line] = rejected("facility_code")
        elif row.a_slot in seen:
            expects[line] = rejected("a_number")
        else:
            expects[line] = APPLIED
            seen.add(row.a_slot)
            people.setdefault(row.facility_slot, []).append(row.a_slot)
    return Listed(taken_at, expects, people)


_files = itertools.count()


def ingest(engine: Engine, folder: Path, written: Written, layout: Layout, name: str) -> Any:
    lines = feed_input(written, layout, folder, next(_files))
    return ingest_roster(engine, lines, source=name, thresholds=Thresholds())


def run(engine: Engine, folder: Path, roster: Roster) -> None:
    tag = next_tag()
    load_facilities(engine, facility_code(tag, 0), facility_code(tag, 1))
    p = plan(roster, tag, timedelta(0))
    note(f"tag {tag}; mangles {[r.mangle for r in roster.rows]}; via file {roster.layout.via_file}")
    note(f"lines: {[line[:2000] for line in p.written.lines]}")
    if p.unreadable:
        before = batch_count(engine)
        with pytest.raises(UnreadableSourceError):
            ingest(engine, folder, p.written, roster.layout, f"r{tag}")
        assert batch_count(engine) == before, "an unreadable roster changed something"
        return
    first = read(roster, p, timedelta(0))
    applied = sum(len(v) for v in first.people.values())
    outcomes = [e.outcome for e in first.expects.values()]
    shown = {kind: min(outcomes.count(kind), 3) for kind in ("applied", "rejected")}
    event(f"rows: {shown['applied']}+ applied, {shown['rejected']}+ rejected")
    if any(e.fields == {"a_number"} for e in first.expects.values()):
        event("a person listed twice")
    summary = ingest(engine, folder, p.written, roster.layout, f"r{tag}")
    check(engine, summary, Outcome(first.expects, frozenset({"completed"}), derived_events=applied))

    if roster.again:
        # The same snapshot again changes nothing: its people are duplicates.
        summary = ingest(engine, folder, p.written, roster.layout, f"r{tag}-again")
        expects = {line: DUPLICATE if e == APPLIED else e for line, e in first.expects.items()}
        check(engine, summary, Outcome(expects, frozenset({"completed"}), derived_events=0))

    base = [r for r in roster.rows if r.when.moment == "base"]
    if roster.older and first.taken_at is not None and first.taken_at == BASE and base:
        # An older snapshot of the same facilities is refused, and changes nothing.
        shift = -timedelta(hours=24)
        older = plan(roster, tag, shift)
        listed = read(roster, older, shift)
        refused = bool(listed.people)
        event(f"an older snapshot: {'refused' if refused else 'empty'}")
        expects = {line: REFUSED if e == APPLIED else e for line, e in listed.expects.items()}
        summary = ingest(engine, folder, older.written, roster.layout, f"r{tag}-older")
        check(
            engine,
            summary,
            Outcome(expects, frozenset({"refused" if refused else "completed"}), derived_events=0,
                    counts_add_up=not refused),
        )  # fmt: skip

    if first.people:
        newer(engine, folder, roster, tag, first)


def newer(engine: Engine, folder: Path, roster: Roster, tag: int, first: Listed) -> None:
    """A snapshot an hour later listing some of the people: the others at each facility
    it lists leave custody, and the batch is held when too many leave or the list shrank
    too much (domain/batch_thresholds.py)."""
    assert first.taken_at is not None
    keep = iter(roster.stay)
    staying = {f: [a for a in people if next(keep, True)] for f, people in first.people.items()}
    at = moment(first.taken_at + timedelta(hours=1), -300)
    lines = [",".join(ROSTER_HEADER).encode() + b"\n"]
    for f, people in sorted(staying.items()):
        for a in people:
            lines.append(f"{at},{facility_code(tag, f)},{a_number(tag, a)},,,,\n".encode())
    written = Written(lines, [], b"".join(lines))
    thresholds = Thresholds()
    leaving = 0
    held = False
    for f, people in staying.items():
        if not people:
            continue  # a facility the snapshot does not list is not covered by it
        before = len(first.people[f])
        leaving += before - len(people)
        held = held or shrank(len(people), before, thresholds)
        held = held or too_many_leaving(before - len(people), before, thresholds)
    expects = {n: APPLIED for n in range(2, len(lines) + 1)}
    event(f"a later snapshot: {'held' if held else 'completed'}")
    plain = replace(roster.layout, via_file=False)
    summary = ingest(engine, folder, written, plain, f"r{tag}-newer")
    check(engine, summary, Outcome(expects, frozenset({"held" if held else "completed"}),
                                   derived_events=leaving))  # fmt: skip


@fuzz_settings(30)
@given(roster=rosters())
def test_any_roster_snapshot_is_accounted_for_row_by_row(
    engine: Engine, tmp_path: Path, roster: Roster
) -> None:
    run(engine, tmp_path, roster)

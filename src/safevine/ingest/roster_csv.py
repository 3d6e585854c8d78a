"""Roster snapshots as CSV: everyone in one or more facilities at one moment.

Columns: snapshot_at (the same on every row), facility_code, a_number, and optionally
given_name, family_name, date_of_birth, country_of_birth.

A national roster is millions of lines, so this reader does what the shared CSV reader
(`source.csv_rows`) and `parse_csv_rows` do, with the same lines, fields, reasons and raw
text, but without an object per row: a line with no quote, no carriage return inside and
valid UTF-8 is split on commas (exactly what `csv` would make of it), and anything else
goes through `csv` itself, one record at a time.
"""

import csv
from collections.abc import Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from itertools import islice, repeat
from typing import Any, NamedTuple

from safevine.domain.a_number import normalise_a_number
from safevine.domain.country import resolve_country
from safevine.domain.custody_event import PersonFacts
from safevine.domain.errors import FieldError
from safevine.domain.names import PersonName, clean_name
from safevine.ingest.event_record import parse_person
from safevine.ingest.fields import birth_date, text, timestamp
from safevine.ingest.source import UNDECODABLE, FeedLines, RecordedLines, csv_rows

REQUIRED = ("snapshot_at", "facility_code", "a_number")
# A row with only these columns takes the fast path below; any other column (aliases,
# protection, ...) goes through the general `parse_person`.
_ROSTER_COLUMNS = frozenset(
    {*REQUIRED, "given_name", "family_name", "date_of_birth", "country_of_birth"}
)


@dataclass(frozen=True)
class RosterEntry:
    taken_at: datetime
    facility_code: str
    person: PersonFacts


class RosterReject(NamedTuple):
    """A row refused while parsing, with what can still be read of it: its facility code
    and A-number (None when unreadable), so it can still count as listed."""

    line: int
    field: str
    reason: str
    raw: str
    facility_code: str | None
    a_number: str | None


@dataclass
class RosterRows:
    """Accepted rows as columns: row i is item i of each list. Values are kept as read
    (stripped), with each distinct value's checked form in the maps beside them: a
    national roster repeats one time and a few thousand codes, names, dates and
    countries millions of times, so each is checked and converted once."""

    lines: list[int] = field(default_factory=list)
    stamps: list[str] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)
    # Canonical already: nearly every A-number is read once per snapshot.
    a_numbers: list[str] = field(default_factory=list)
    # "" where absent.
    given_names: list[str] = field(default_factory=list)
    family_names: list[str] = field(default_factory=list)
    births: list[str] = field(default_factory=list)
    countries: list[str] = field(default_factory=list)
    raws: list[str] = field(default_factory=list)
    times: dict[str, datetime] = field(default_factory=dict)
    facility_codes: dict[str, str] = field(default_factory=dict)
    # Given and family names alike; "" is None. Each chunk has its own maps.
    names: dict[str, str | None] = field(default_factory=lambda: {"": None})
    dates: dict[str, date | None] = field(default_factory=lambda: {"": None})
    country_codes: dict[str, str | None] = field(default_factory=lambda: {"": None})

    def __len__(self) -> int:
        return len(self.lines)

    def person(self, i: int) -> tuple[str | None, str | None, date | None, str | None]:
        """Row i's given name, family name, date and country of birth, as checked."""
        return (
            self.names[self.given_names[i]],
            self.names[self.family_names[i]],
            self.dates[self.births[i]],
            self.country_codes[self.countries[i]],
        )


@dataclass
class RosterChunk:
    rows: RosterRows
    rejects: list[RosterReject]
    # Records read (rows and rejects; blank lines are not records).
    total: int


def parse_entry(row: Mapping[str, Any]) -> RosterEntry:
    return RosterEntry(
        _taken_at(row.get("snapshot_at")), _facility(row.get("facility_code")), _person(row)
    )


class _Counted:
    """The input lines, counted as they are taken (header included)."""

    def __init__(self, lines: Iterable[bytes]) -> None:
        self._lines = iter(lines)
        self.taken = 0
        self.back: list[bytes] = []

    def __iter__(self) -> "_Counted":
        return self

    @property
    def position(self) -> int:
        """Lines read so far, less those given back to be read again."""
        return self.taken - len(self.back)

    def take(self, size: int) -> list[bytes]:
        """The next `size` lines (fewer at the end)."""
        block = [self.back.pop() for _ in range(min(size, len(self.back)))]
        if len(block) < size:
            more = list(islice(self._lines, size - len(block)))
            self.taken += len(more)
            block.extend(more)
        return block

    def __next__(self) -> bytes:
        if self.back:
            return self.back.pop()
        line = next(self._lines)
        self.taken += 1
        return line


def read_roster_csv(
    lines: Iterable[bytes], source: str, size: int
) -> Generator[RosterChunk, None, None]:
    """Check the header at once (raises UnreadableSourceError), then read `size` records
    a chunk, lazily."""
    counted = _Counted(lines)
    # The shared reader checks the header and takes exactly its lines; its row generator
    # is never started, so the rest of the input is still ours.
    header, _ = csv_rows(counted, REQUIRED, source)
    chunks = _chunks(counted, header, size)
    return _with_overlong(chunks, lines) if isinstance(lines, FeedLines) else chunks


def _with_overlong(
    chunks: Generator[RosterChunk, None, None], lines: FeedLines
) -> Generator[RosterChunk, None, None]:
    """Each chunk with a reject for every line too long to be read passed over while it was
    read. Such a row may have listed anyone, so, as any row without a readable A-number,
    it withholds departures."""
    try:
        for chunk in chunks:
            for found in lines.take_overlong():
                chunk.rejects.append(
                    RosterReject(found.line, "line", found.reason, found.head, None, None)
                )
                chunk.total += 1
            yield chunk
        if left := lines.take_overlong():
            rejects = [RosterReject(f.line, "line", f.reason, f.head, None, None) for f in left]
            yield RosterChunk(RosterRows(), rejects, len(rejects))
    finally:
        chunks.close()


def _chunks(counted: _Counted, header: list[str], size: int) -> Generator[RosterChunk, None, None]:
    width = len(header)
    columns = dict(zip(header, range(width), strict=True))
    fast = _ROSTER_COLUMNS.issuperset(columns)
    # Where each column of _FAST_ORDER is; -1 when absent.
    at = [columns.get(name, -1) for name in _FAST_ORDER]
    recorded = RecordedLines(_decoded(counted))
    slow = csv.reader(recorded, strict=False)
    while block := counted.take(size):
        if fast:
            chunk = _plain_block(block, counted.position - len(block) + 1, width, at)
            if chunk is not None:
                yield chunk
                continue
        # Read again, line by line, from the first line of the block.
        counted.back.extend(reversed(block))
        yield _line_chunk(counted, slow, recorded, header, at if fast else None, size)


_FAST_ORDER = (
    "snapshot_at",
    "facility_code",
    "a_number",
    "given_name",
    "family_name",
    "date_of_birth",
    "country_of_birth",
)


def _plain_block(block: list[bytes], first: int, width: int, at: list[int]) -> RosterChunk | None:
    """A block of lines read column by column, each distinct value checked once; None when
    any line is not plain (a quote, a carriage return inside, not UTF-8, a blank line, a
    wrong number of fields) or any value is refused, for the line-by-line path to read.

    A plain line is exactly what `csv` reads as its fields split on commas."""
    n = len(block)
    data = b"".join(block)
    if b'"' in data or b"\x00" in data or max(map(len, block)) >= csv.field_size_limit():
        return None
    # One line per item, each ending in a newline (the last may not).
    ends = data.endswith(b"\n")
    if data.count(b"\n") != n - (not ends) or not all(
        map(bytes.endswith, block[: n - 1], repeat(b"\n"))
    ):
        return None
    if b"\r" in data:
        if data.count(b"\r") != data.count(b"\r\n"):
            return None
        data = data.replace(b"\r\n", b"\n")
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return None
    if UNDECODABLE in text:
        return None
    lines = text.split("\n")
    if ends:
        lines.pop()
    if set(map(str.count, lines, repeat(","))) != {width - 1}:
        return None
    # Split once; each column is then every width-th field, stripped once per value.
    flat = ",".join(lines).split(",")
    blank = [""] * n

    def column(index: int) -> list[str]:
        return flat[index::width] if index >= 0 else blank

    rows = RosterRows(
        list(range(first, first + n)),
        column(at[0]),
        column(at[1]),
        column(at[2]),
        column(at[3]),
        column(at[4]),
        column(at[5]),
        column(at[6]),
        lines,
    )
    today = datetime.now(UTC).date()
    try:
        rows.times = _checked(rows.stamps, _TIMES, _taken_at, required=True)
        rows.facility_codes = _checked(rows.codes, _CODES, _facility, required=True)
        numbers = rows.a_numbers
        if not (
            set(map(len, numbers)) == {9}
            and (digits := "".join(numbers)).isascii()
            and digits.isdigit()
            and "000000000" not in numbers
        ):
            rows.a_numbers = [_a_number(a.strip()) for a in numbers]
        rows.names = _checked(rows.given_names + rows.family_names, _NAME_PARTS, _clean_part)
        spellings = rows.names.values()
        # Some name empty: every row must have both or neither, so, here, none at all
        # (a block with names on some rows only is left to the per-line path).
        if None in spellings and len(set(spellings)) > 1:
            return None
        rows.dates = _checked(rows.births, _BIRTHS, lambda v: _born(v, today))
        rows.country_codes = _checked(rows.countries, _COUNTRIES, _country)
    except FieldError:
        return None
    return RosterChunk(rows, [], n)


def _checked(
    values: list[str], cache: dict[str, Any], check: Any, required: bool = False
) -> dict[str, Any]:
    """Each distinct value and its checked form: `check` of it stripped, or None when that
    is empty (FieldError when `required`: a blank line, or a row for the per-line path).

    `cache` keeps the answers by value as read, across blocks and snapshots (and the
    snapshots other threads read), so most values of a block are found there at C speed.
    What is returned is the block's own."""
    distinct = set(values)
    if len(cache) > _KEPT:
        cache.clear()
    for value in distinct.difference(cache):
        cache[value] = _answer(value, check, required)
    answers = dict(zip(distinct, map(cache.get, distinct, repeat(_MISSING)), strict=True))
    if _MISSING in answers.values():  # emptied by another thread meanwhile
        for value, found in answers.items():
            if found is _MISSING:
                answers[value] = _answer(value, check, required)
    return answers


_MISSING = object()


def _answer(value: str, check: Any, required: bool) -> Any:
    key = value.strip()
    if key:
        return check(key)
    if required:
        raise FieldError("", "is required")
    return None


def _a_number(value: str) -> str:
    if len(value) == 9 and value.isascii() and value.isdigit() and value != "000000000":
        return value
    return _slow_a_number(value)


def _clean_part(value: str) -> str:
    """The spelling kept of a non-empty name part; raises FieldError."""
    checked, cleaned = _name_part(value, "given_name")
    for outcome in (checked, cleaned):
        if isinstance(outcome, tuple):
            raise FieldError(*outcome)
    assert isinstance(cleaned, str)
    return cleaned


def _line_chunk(
    counted: _Counted,
    slow: Any,
    recorded: RecordedLines,
    header: list[str],
    at: list[int] | None,
    size: int,
) -> RosterChunk:
    """Up to `size` records read line by line: what the shared reader would make of them."""
    width = len(header)
    limit = csv.field_size_limit()
    rows = RosterRows()
    rejects: list[RosterReject] = []
    total = 0
    line = counted.position
    today = datetime.now(UTC).date()
    for raw_line in counted:
        start = line + 1
        body = raw_line[:-1] if raw_line.endswith(b"\n") else raw_line
        if body.endswith(b"\r"):
            body = body[:-1]
        fields: list[str] | None = None
        checked = False
        if (
            b'"' not in body
            and b"\r" not in body
            and b"\n" not in body
            and b"\x00" not in body
            and len(body) < limit
        ):
            try:
                raw = body.decode()
            except UnicodeDecodeError:
                raw = ""
            else:
                if UNDECODABLE not in raw:
                    fields = raw.split(",")
                    checked = True
        if fields is None:
            # Anything unusual is read by `csv` itself, from this line on.
            counted.back.append(raw_line)
            try:
                fields = next(slow)
            except csv.Error as error:
                line = counted.position
                total += 1
                reason = f"is not valid CSV ({error})"
                rejects.append(RosterReject(start, "line", reason, recorded.take(), None, None))
                if total >= size:
                    break
                continue
            except StopIteration:  # pragma: no cover - a line was just given back
                break
            recorded.take()
            raw = ",".join(fields)
        line = counted.position
        values = [f.strip() for f in fields]
        if not any(values):
            continue
        total += 1
        if len(fields) != width:
            reason = f"has {len(fields)} fields but the header has {width}"
            rejects.append(RosterReject(start, "line", reason, raw, None, None))
        elif not checked and any(UNDECODABLE in f for f in fields):
            rejects.append(RosterReject(start, "line", "is not valid UTF-8 text", raw, None, None))
        elif at is not None:
            _fast_row(start, raw, [values[i] if i >= 0 else "" for i in at], today, rows, rejects)
        else:
            _general_row(start, raw, dict(zip(header, values, strict=True)), rows, rejects)
        if total >= size:
            break
    return RosterChunk(rows, rejects, total)


def _decoded(counted: _Counted) -> Iterator[str]:
    """The lines `csv` reads, decoded as the shared reader decodes them."""
    for raw in counted:
        yield raw.decode("utf-8", errors="replace")


# Answers already given for values seen before, by value as read (only values that
# passed are kept; a value that fails goes through the checks every time), shared by
# every snapshot read. Emptied when full.
_TIMES: dict[str, datetime] = {}
_CODES: dict[str, str] = {}
_NAME_PARTS: dict[str, str | None] = {}
_BIRTHS: dict[str, date | None] = {}
_COUNTRIES: dict[str, str | None] = {}
_KEPT = 65_536


def _fast_row(
    line: int,
    raw: str,
    v: list[str],
    today: date,
    rows: RosterRows,
    rejects: list[RosterReject],
) -> None:
    """The checks of `parse_entry`, in its order, with its fields and reasons, on the
    values of _FAST_ORDER ("" when absent)."""
    stamp, code, a_number, given, family, born, country = v
    try:
        taken_at = _taken_at(stamp)
        facility = _facility(code)
        canonical = _a_number(a_number)
        name = _name(given, family)
        dob = _born(born, today)
        iso = _country(country)
    except FieldError as error:
        rejects.append(
            RosterReject(
                line, error.field, error.reason, raw, _salvaged_facility(code),
                _salvaged_a_number(a_number),
            )
        )  # fmt: skip
        return
    rows.lines.append(line)
    rows.stamps.append(stamp)
    rows.times[stamp] = taken_at
    rows.codes.append(code)
    rows.facility_codes[code] = facility
    rows.a_numbers.append(canonical)
    rows.given_names.append(given)
    rows.family_names.append(family)
    if name is not None:
        rows.names[given], rows.names[family] = name.given, name.family
    rows.births.append(born)
    rows.dates[born] = dob
    rows.countries.append(country)
    rows.country_codes[country] = iso
    rows.raws.append(raw)


def _slow_a_number(raw: str | None) -> str:
    found = text({"a_number": raw}, "a_number", "a_number", required=True)
    return normalise_a_number(found or "", "a_number")


def _general_row(
    line: int,
    raw: str,
    record: dict[str, str],
    rows: RosterRows,
    rejects: list[RosterReject],
) -> None:
    try:
        entry = parse_entry(record)
    except FieldError as error:
        code = record.get("facility_code")
        rejects.append(
            RosterReject(
                line, error.field, error.reason, raw, _salvaged_facility(code),
                _salvaged_a_number(record.get("a_number")),
            )
        )  # fmt: skip
        return
    # Stored as their checked forms, each its own key.
    person = entry.person
    name = person.name
    stamp = record["snapshot_at"]
    given, family = (name.given, name.family) if name else ("", "")
    born = person.date_of_birth.isoformat() if person.date_of_birth else ""
    country = person.country_of_birth or ""
    rows.lines.append(line)
    rows.stamps.append(stamp)
    rows.times[stamp] = entry.taken_at
    rows.codes.append(entry.facility_code)
    rows.facility_codes[entry.facility_code] = entry.facility_code
    rows.a_numbers.append(person.a_number)
    rows.given_names.append(given)
    rows.family_names.append(family)
    if name is not None:
        rows.names[given], rows.names[family] = name.given, name.family
    rows.births.append(born)
    rows.dates[born] = person.date_of_birth
    rows.countries.append(country)
    rows.country_codes[country] = country or None
    rows.raws.append(raw)


def _salvaged_facility(raw: str | None) -> str | None:
    """The facility code of a rejected row, if it reads as one: it is looked up, and an
    unread value (a NUL, which PostgreSQL refuses) must never reach a query."""
    try:
        return _facility(raw) if raw else None
    except FieldError:
        return None


def _salvaged_a_number(raw: str | None) -> str | None:
    """The A-number of a rejected row, if it can be read at all."""
    try:
        return normalise_a_number(str(raw or ""))
    except FieldError:
        return None


# The checks below are pure, so their answers are cached (a FieldError is raised afresh
# each time, never cached). They check exactly what `parse_person` checks, in the same
# order, with the same fields and reasons.


def _person(row: Mapping[str, Any]) -> PersonFacts:
    if not _ROSTER_COLUMNS.issuperset(row):
        return parse_person(row, prefix="")
    raw = row.get("a_number")
    if isinstance(raw, str) and len(raw) == 9 and raw.isascii() and raw.isdigit():
        a_number = raw if raw != "000000000" else normalise_a_number(raw)
    else:
        a_number = normalise_a_number(
            text(row, "a_number", "a_number", required=True) or "", "a_number"
        )
    name = _name(row.get("given_name"), row.get("family_name"))
    born = _born(row.get("date_of_birth"), datetime.now(UTC).date())
    country = _country(row.get("country_of_birth"))
    return PersonFacts(a_number, name, (), born, country, None)


@lru_cache(maxsize=16)
def _taken_at(value: Any) -> datetime:
    found = text({"snapshot_at": value}, "snapshot_at", "snapshot_at", required=True)
    return timestamp(found or "", "snapshot_at")


@lru_cache(maxsize=16_384)
def _facility(value: Any) -> str:
    record = {"facility_code": value}
    return (text(record, "facility_code", "facility_code", required=True, limit=40) or "").upper()


def _name(given: Any, family: Any) -> PersonName | None:
    given_text, given_clean = _name_part(given, "given_name")
    family_text, family_clean = _name_part(family, "family_name")
    for outcome in (given_text, family_text):
        if isinstance(outcome, tuple):
            raise FieldError(*outcome)
    if (given_text is None) != (family_text is None):
        missing = "given_name" if given_text is None else "family_name"
        raise FieldError(missing, "is required when the other name is given")
    if not (given_text and family_text):
        return None
    for outcome in (given_clean, family_clean):
        if isinstance(outcome, tuple):
            raise FieldError(*outcome)
    assert isinstance(given_clean, str) and isinstance(family_clean, str)
    return PersonName(given_clean, family_clean)


# Each stage's answer or the (field, reason) that stopped it, so the errors of a name
# are raised in `parse_person`'s order: both texts, then the pair, then both spellings.
_Outcome = str | None | tuple[str, str]


@lru_cache(maxsize=65_536)
def _name_part(value: Any, key: str) -> tuple[_Outcome, _Outcome]:
    try:
        found = text({key: value}, key, key, required=False, limit=100)
    except FieldError as error:
        return (error.field, error.reason), None
    if not found:
        return found, None
    try:
        return found, clean_name(found, key)
    except FieldError as error:
        return found, (error.field, error.reason)


@lru_cache(maxsize=65_536)
def _born(value: Any, today: date) -> date | None:
    found = text({"date_of_birth": value}, "date_of_birth", "date_of_birth", required=False)
    return birth_date(found, "date_of_birth", today) if found else None


@lru_cache(maxsize=1_024)
def _country(value: Any) -> str | None:
    found = text(
        {"country_of_birth": value}, "country_of_birth", "country_of_birth", required=False
    )
    return resolve_country(found, "country_of_birth") if found else None

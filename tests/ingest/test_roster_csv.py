"""The roster reader reads exactly what the shared CSV reader and `parse_entry` read.

`read_roster_csv` reads plain blocks column by column and everything else line by line;
whatever the input, it must give the same rows, lines, fields, reasons and raw text as
the general path every other feed takes (`csv_rows`, `parse_csv_rows`, `parse_entry`).
"""

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from safevine.domain.a_number import normalise_a_number
from safevine.domain.errors import FieldError
from safevine.ingest.fields import text
from safevine.ingest.parsed import Parsed, parse_csv_rows
from safevine.ingest.roster_csv import REQUIRED, RosterEntry, parse_entry, read_roster_csv
from safevine.ingest.source import csv_rows
from tests.builders import ROSTER_HEADER

STANDARD = ROSTER_HEADER


def reference(lines: list[bytes]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], int]:
    """Accepted rows, rejects and the record count, the way the shared reader reads them."""
    _, rows = csv_rows(lines, REQUIRED, "test.csv")
    accepted, rejected, total = [], [], 0
    for p in parse_csv_rows(rows, parse_entry):
        total += 1
        if p.value is not None:
            accepted.append(_accepted(p.line, p.value, p.raw))
        else:
            rejected.append((p.line, p.field, p.reason, p.raw, _code(p), _a_number(p)))
    return accepted, rejected, total


def _accepted(line: int, entry: RosterEntry, raw: str) -> tuple[Any, ...]:
    person, name = entry.person, entry.person.name
    return (
        line,
        entry.taken_at,
        entry.facility_code,
        person.a_number,
        name.given if name else None,
        name.family if name else None,
        person.date_of_birth,
        person.country_of_birth,
        raw,
    )


def _code(p: Parsed[RosterEntry]) -> str | None:
    """The rejected row's facility code, if it reads as one (as its A-number, below)."""
    try:
        code = text(p.record, "facility_code", "facility_code", required=False, limit=40)
    except FieldError:
        return None
    return code.upper() if code else None


def _a_number(p: Parsed[RosterEntry]) -> str | None:
    try:
        return normalise_a_number(str(p.record.get("a_number") or ""))
    except FieldError:
        return None


def ours(lines: list[bytes], size: int) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], int]:
    accepted, rejected, total = [], [], 0
    for chunk in read_roster_csv(iter(lines), "test.csv", size):
        rows = chunk.rows
        total += chunk.total
        for i, line in enumerate(rows.lines):
            given_name, family_name, born, country = rows.person(i)
            accepted.append(
                (
                    line,
                    rows.times[rows.stamps[i]],
                    rows.facility_codes[rows.codes[i]],
                    rows.a_numbers[i],
                    given_name,
                    family_name,
                    born,
                    country,
                    rows.raws[i],
                )
            )
        rejected.extend(tuple(r) for r in chunk.rejects)
    return accepted, sorted(rejected), total


def same(lines: list[bytes], sizes: Iterable[int] = (1, 3, 10_000)) -> None:
    expected = reference(lines)
    expected = (expected[0], sorted(expected[1]), expected[2])
    for size in sizes:
        assert ours(lines, size) == expected, size


STAMP = "2026-07-01T06:15:00+00:00"


def test_plain_rows_are_read_as_the_shared_reader_reads_them() -> None:
    lines = [
        ",".join(STANDARD).encode() + b"\n",
        f"{STAMP},f1,123456789,Ana,Pérez López,1990-05-01,MX\n".encode(),
        f"{STAMP},F2,223456789,  Luis ,García,1980-01-31,mexico\n".encode(),
        f"{STAMP},F2,323456789,,,,\n".encode(),
        f"{STAMP},F3,A-423-456-789,Rosa,Díaz,,GT".encode(),
    ]
    same(lines)


def test_crlf_lines_a_bom_and_a_last_line_without_newline() -> None:
    lines = [
        b"\xef\xbb\xbf" + ",".join(STANDARD).encode() + b"\r\n",
        f"{STAMP},F1,123456789,Ana,Pérez,1990-05-01,MX\r\n".encode(),
        f"{STAMP},F1,223456789,Ana,Pérez,1990-05-01,MX".encode(),
    ]
    same(lines)


def test_unusual_lines_go_through_csv_with_the_same_lines_and_reasons() -> None:
    header = ",".join(STANDARD).encode() + b"\n"
    lines = [
        header,
        f'{STAMP},F1,"123456789","Ana, María",Pérez,1990-05-01,MX\n'.encode(),
        f'{STAMP},F1,223456789,"Ana\n'.encode(),
        b'Maria",Perez,1990-05-01,MX\n',
        b"\n",
        b" , ,,,,,\n",
        f"{STAMP},F1,323456789,Ana,P\xe9rez,1990-05-01,MX\n".encode("latin-1"),
        f"{STAMP},F1,423456789,Ana\n".encode(),
        f"{STAMP},F1,523456789,Ana,Pérez,1990-05-01,MX,extra\n".encode(),
        f"{STAMP},F1,623456789,A\rna,Pérez,1990-05-01,MX\n".encode(),
        f"{STAMP},F1,723456789,Ana,Pérez,1990-05-01,MX\n".encode(),
        f"{STAMP},F1,823456789,\x00Ana,Pérez,1990-05-01,MX\n".encode(),
        f"{STAMP},F1,923456789,Ana\ufffd,Pérez,1990-05-01,MX\n".encode(),
    ]
    same(lines)


def test_refused_values_have_the_same_field_and_reason() -> None:
    future = (datetime.now(UTC).date() + timedelta(days=3)).isoformat()
    rows = [
        "not a time,F1,123456789,Ana,Pérez,1990-05-01,MX",
        "2026-07-01T06:15:00,F1,123456789,Ana,Pérez,1990-05-01,MX",
        f"{STAMP},,123456789,Ana,Pérez,1990-05-01,MX",
        f"{STAMP},{'F' * 41},123456789,Ana,Pérez,1990-05-01,MX",
        f"{STAMP},F1,,Ana,Pérez,1990-05-01,MX",
        f"{STAMP},F1,000000000,Ana,Pérez,1990-05-01,MX",
        f"{STAMP},F1,12345,Ana,Pérez,1990-05-01,MX",
        f"{STAMP},F1,not-a-number,Ana,Pérez,1990-05-01,MX",
        f"{STAMP},F1,12345678,Ana,Pérez,1990-05-01,MX",
        f"{STAMP},F1,123456789,Ana,,1990-05-01,MX",
        f"{STAMP},F1,123456789,,Pérez,1990-05-01,MX",
        f"{STAMP},F1,123456789,1234,Pérez,1990-05-01,MX",
        f"{STAMP},F1,123456789,{'a' * 101},Pérez,1990-05-01,MX",
        f"{STAMP},F1,123456789,Ana,Pérez,1990-13-45,MX",
        f"{STAMP},F1,123456789,Ana,Pérez,{future},MX",
        f"{STAMP},F1,123456789,Ana,Pérez,1899-12-31,MX",
        f"{STAMP},F1,123456789,Ana,Pérez,1990-05-01,Atlantis",
        f"{STAMP},F1,123456789,Ana\u200b,Pérez,1990-05-01,MX",
        f"{STAMP},F1,123456789,Ana\x07,Pérez,1990-05-01,MX",
    ]
    same([(",".join(STANDARD) + "\n").encode(), *((r + "\n").encode() for r in rows)])


def test_other_headers_take_the_general_path_or_their_own_order() -> None:
    reordered = ["a_number", "facility_code", "snapshot_at", "country_of_birth"]
    same(
        [
            (",".join(reordered) + "\n").encode(),
            f"123456789,F1,{STAMP},MX\n".encode(),
            f"223456789,F1,{STAMP},\n".encode(),
            f"bad,F1,{STAMP},MX\n".encode(),
        ]
    )
    general = [*STANDARD, "protection"]
    same(
        [
            (",".join(general) + "\n").encode(),
            f"{STAMP},F1,123456789,Ana,Pérez,1990-05-01,MX,protected\n".encode(),
            f"{STAMP},F1,223456789,Ana,Pérez,1990-05-01,MX,maybe\n".encode(),
            f"{STAMP},F1,323456789,,,,,\n".encode(),
        ]
    )


# Fields that are mostly valid, sometimes odd: the reader must agree on all of them.
_FIELD = st.one_of(
    st.sampled_from(
        [
            STAMP,
            "2026-07-01T06:15:00Z",
            "F1",
            "f2",
            "123456789",
            "A-123-456-780",
            "12345678",
            "Ana",
            "José Luis",
            " Ana ",
            "1990-05-01",
            "MX",
            "Guatemala",
            "",
            " ",
            '"',
            '"a,b"',
            "\r",
            "\t",
            "\u00a0",
            "x\ny",
        ]
    ),
    st.text(max_size=6),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(
        st.lists(_FIELD, min_size=6, max_size=8).map(lambda fields: ",".join(fields)),
        max_size=12,
    ),
    crlf=st.booleans(),
    last_newline=st.booleans(),
    size=st.integers(1, 5),
)
def test_any_input_is_read_as_the_shared_reader_reads_it(
    rows: list[str], crlf: bool, last_newline: bool, size: int
) -> None:
    end = "\r\n" if crlf else "\n"
    text = end.join([",".join(STANDARD), *rows]) + (end if last_newline else "")
    # As a file is read: split after each newline only.
    lines = [line for line in re.split(b"(?<=\n)", text.encode(errors="surrogatepass")) if line]
    try:
        expected = reference(lines)
    except Exception as error:  # the reference must not fail where ours does not
        raise AssertionError(f"reference failed: {error!r}") from error
    expected = (expected[0], sorted(expected[1]), expected[2])
    assert ours(lines, size) == expected
    assert ours(lines, 10_000) == expected


def test_a_block_of_plain_lines_checks_each_value_once() -> None:
    lines = [(",".join(STANDARD) + "\n").encode()]
    lines += [
        f"{STAMP},F{n % 7},{100000000 + n},Ana,Pérez {n % 11},"
        f"{date(1950, 1, 1) + timedelta(days=n % 97)},MX\n".encode()
        for n in range(5_000)
    ]
    same(lines, sizes=(777, 10_000))


_PAD = st.sampled_from(["", " ", "\t", "\u00a0", "\u2003"])


def _padded(values: list[str]) -> st.SearchStrategy[str]:
    return st.tuples(_PAD, st.sampled_from(values), _PAD).map("".join)


_VALID_ROW = st.tuples(
    _padded([STAMP]),
    _padded(["F1", "f1", "F2"]),
    st.integers(100_000_000, 100_000_030).map(str),
    _padded(["Ana", "José", "Luis  Miguel", "O'Brien"]),
    _padded(["Pérez", "García López", "Ng"]),
    _padded(["1990-05-01", "1985-12-31", ""]),
    _padded(["MX", "gt", "Honduras", ""]),
).map(",".join)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(st.one_of(_VALID_ROW, _VALID_ROW, _VALID_ROW, _FIELD), max_size=15),
    size=st.integers(1, 6),
)
def test_mostly_plain_input_is_read_as_the_shared_reader_reads_it(
    rows: list[str], size: int
) -> None:
    text = "\n".join([",".join(STANDARD), *rows]) + "\n"
    lines = [line for line in re.split(b"(?<=\n)", text.encode(errors="surrogatepass")) if line]
    expected = reference(lines)
    expected = (expected[0], sorted(expected[1]), expected[2])
    assert ours(lines, size) == expected
    assert ours(lines, 10_000) == expected

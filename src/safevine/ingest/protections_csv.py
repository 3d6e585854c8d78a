"""Protection lists as CSV: a_number, status (`protected` or `cleared`), as_of, source."""

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from safevine.domain.a_number import normalise_a_number
from safevine.domain.errors import FieldError
from safevine.domain.protection import Protection
from safevine.domain.value_ranges import check_moment
from safevine.ingest.event_record import parse_protection
from safevine.ingest.fields import text, timestamp
from safevine.ingest.parsed import Parsed, parse_csv_rows
from safevine.ingest.source import csv_rows

REQUIRED = ("a_number", "status", "as_of")


@dataclass(frozen=True)
class ProtectionRow:
    a_number: str
    status: Protection
    as_of: datetime
    source: str | None


def _as_of(value: str) -> datetime:
    """A date and time with offset, or a plain date (taken as midnight UTC), within the
    range of stored moments either way."""
    if len(value) == 10:
        try:
            day = datetime.combine(date.fromisoformat(value), time(), UTC)
        except ValueError:
            pass
        else:
            return check_moment(day, "as_of", datetime.now(UTC))
    return timestamp(value, "as_of")


def parse_row(row: Mapping[str, Any]) -> ProtectionRow:
    a_number = normalise_a_number(text(row, "a_number", "a_number", required=True) or "")
    status = parse_protection(text(row, "status", "status", required=True), "status")
    assert status is not None
    return ProtectionRow(
        a_number=a_number,
        status=status,
        as_of=_as_of(text(row, "as_of", "as_of", required=True) or ""),
        source=text(row, "source", "source", required=False),
    )


def parse_protections_csv(lines: Iterable[bytes], source: str) -> Iterator[Parsed[ProtectionRow]]:
    """Check the header at once (raises UnreadableSourceError), then parse rows lazily."""
    _, rows = csv_rows(lines, REQUIRED, source)
    return parse_csv_rows(rows, parse_row)


def protection_claim(record: Mapping[str, Any]) -> str | None:
    """The A-number of a rejected row that does not clearly say `cleared`, to protect anyway.

    Fail closed: a row whose status is unreadable was most likely meant to protect.
    """
    status = str(record.get("status") or "").strip().lower()
    if status == Protection.CLEARED:
        return None
    try:
        return normalise_a_number(str(record.get("a_number") or ""))
    except FieldError:
        return None

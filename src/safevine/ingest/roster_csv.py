"""Roster snapshots as CSV: everyone in one or more facilities at one moment.

Columns: snapshot_at (the same on every row), facility_code, a_number, and optionally
given_name, family_name, date_of_birth, country_of_birth.
"""

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from safevine.domain.custody_event import PersonFacts
from safevine.ingest.event_record import parse_person
from safevine.ingest.fields import text, timestamp
from safevine.ingest.parsed import Parsed, parse_csv_rows
from safevine.ingest.source import csv_rows

REQUIRED = ("snapshot_at", "facility_code", "a_number")


@dataclass(frozen=True)
class RosterEntry:
    taken_at: datetime
    facility_code: str
    person: PersonFacts


def parse_entry(row: Mapping[str, Any]) -> RosterEntry:
    taken_at = timestamp(
        text(row, "snapshot_at", "snapshot_at", required=True) or "", "snapshot_at"
    )
    facility = (text(row, "facility_code", "facility_code", required=True, limit=40) or "").upper()
    return RosterEntry(taken_at, facility, parse_person(row, prefix=""))


def parse_roster_csv(lines: Iterable[bytes], source: str) -> Iterator[Parsed[RosterEntry]]:
    """Check the header at once (raises UnreadableSourceError), then parse rows lazily."""
    _, rows = csv_rows(lines, REQUIRED, source)
    return parse_csv_rows(rows, parse_entry)

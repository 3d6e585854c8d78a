"""Feed records for tests, written the way a real feed would send them."""

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from safevine.ingest.facilities import ingest_facilities

NOW = datetime.now(UTC).replace(microsecond=0)

# A roster snapshot's columns in the order agencies send them (docs/feeds.md).
ROSTER_HEADER = [
    "snapshot_at",
    "facility_code",
    "a_number",
    "given_name",
    "family_name",
    "date_of_birth",
    "country_of_birth",
]


def person(
    a_number: str,
    given: str = "Ana",
    family: str = "Pérez",
    *,
    born: date | None = date(1990, 5, 1),
    country: str | None = "MX",
    **extra: Any,
) -> dict[str, Any]:
    block: dict[str, Any] = {"a_number": a_number, "given_name": given, "family_name": family}
    if born is not None:
        block["date_of_birth"] = born.isoformat()
    if country is not None:
        block["country_of_birth"] = country
    block.update(extra)
    return block


def event(
    event_id: str,
    kind: str,
    at: datetime,
    who: dict[str, Any],
    facility: str | None = "F1",
    **details: Any,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "event_id": event_id,
        "kind": kind,
        "occurred_at": at.isoformat(),
        "person": who,
    }
    if facility is not None:
        record["facility_code"] = facility
    if details:
        record["details"] = details
    return record


def jsonl(*records: dict[str, Any] | str) -> list[bytes]:
    return [
        (r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)).encode() + b"\n"
        for r in records
    ]


def csv_lines(header: list[str], *rows: list[Any]) -> list[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for row in rows:
        writer.writerow(row)
    return [line.encode() for line in buffer.getvalue().splitlines(keepends=True)]


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def load_facilities(engine: Engine, *codes: str) -> None:
    rows = [
        [c, f"Facility {c}", "1 Main St", "Eloy", "AZ", "85231", "520-555-0100", "IGSA", ""]
        for c in codes
    ]
    lines = csv_lines(
        ["code", "name", "address", "city", "state", "postal_code", "phone", "type", "time_zone"],
        *rows,
    )
    summary = ingest_facilities(engine, lines, source="facilities.csv")
    assert summary.rejected == 0

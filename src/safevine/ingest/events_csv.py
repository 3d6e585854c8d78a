"""Custody events as CSV: one event per row, person and detail fields as flat columns."""

from collections.abc import Iterable, Iterator
from typing import Any

from safevine.domain.custody_event import CustodyEventInput
from safevine.ingest.event_record import parse_event, protection_part, stored_content
from safevine.ingest.parsed import Parsed, parse_csv_row
from safevine.ingest.source import CsvRow, csv_rows

REQUIRED = ("event_id", "kind", "occurred_at", "a_number")
PERSON_COLUMNS = (
    "a_number",
    "given_name",
    "family_name",
    "date_of_birth",
    "country_of_birth",
    "protection",
)
DETAIL_COLUMNS = {
    "release_reason": "reason",
    "destination_country": "destination_country",
    "court": "court",
    "hearing_at": "hearing_at",
    "from_facility_code": "from_facility_code",
}


def _aliases(value: str) -> list[dict[str, str]]:
    """`Given/Family; Given/Family` into alias objects; a malformed one is kept to be refused."""
    aliases = []
    for part in (p.strip() for p in value.split(";")):
        if not part:
            continue
        given, _, family = part.partition("/")
        aliases.append({"given_name": given.strip(), "family_name": family.strip()})
    return aliases


def nest(values: dict[str, str]) -> dict[str, Any]:
    """The flat CSV row in the nested shape the JSON Lines format uses."""
    person: dict[str, Any] = {k: values[k] for k in PERSON_COLUMNS if values.get(k)}
    if values.get("aliases"):
        person["aliases"] = _aliases(values["aliases"])
    details = {
        name: values[column] for column, name in DETAIL_COLUMNS.items() if values.get(column)
    }
    return {
        "event_id": values.get("event_id"),
        "kind": values.get("kind"),
        "occurred_at": values.get("occurred_at"),
        "facility_code": values.get("facility_code"),
        "sequence": values.get("sequence"),
        "person": person,
        "details": details,
    }


def parse_events_csv(lines: Iterable[bytes], source: str) -> Iterator[Parsed[CustodyEventInput]]:
    """Check the header at once (raises UnreadableSourceError), then parse rows lazily."""
    return map(parse_csv_record, csv_records(lines, source))


def csv_records(lines: Iterable[bytes], source: str) -> Iterator[CsvRow | tuple[int, str, str]]:
    """The rows, once the header is checked as `parse_events_csv` says; `parse_csv_record`
    turns each into its Parsed."""
    return csv_rows(lines, REQUIRED, source)[1]


def parse_csv_record(row: CsvRow | tuple[int, str, str]) -> Parsed[CustodyEventInput]:
    """One row of a CSV feed as its event, or as a reject naming its column."""
    return parse_csv_row(
        row,
        parse_event,
        shape=nest,
        column_of=column_of,
        keep=protection_part,
        content=stored_content,
    )


_COLUMN_OF_DETAIL = {f"details.{name}": column for column, name in DETAIL_COLUMNS.items()}


def column_of(field: str) -> str:
    """The CSV column a nested field name came from, so errors name what the user sees."""
    if field.startswith("person.aliases"):
        return "aliases"
    return _COLUMN_OF_DETAIL.get(field, field.removeprefix("person."))

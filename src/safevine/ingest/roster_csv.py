"""Roster snapshots as CSV: everyone in one or more facilities at one moment.

Columns: snapshot_at (the same on every row), facility_code, a_number, and optionally
given_name, family_name, date_of_birth, country_of_birth.
"""

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

from safevine.domain.a_number import normalise_a_number
from safevine.domain.country import resolve_country
from safevine.domain.custody_event import PersonFacts
from safevine.domain.errors import FieldError
from safevine.domain.names import PersonName, clean_name
from safevine.ingest.event_record import parse_person
from safevine.ingest.fields import birth_date, text, timestamp
from safevine.ingest.parsed import Parsed, parse_csv_rows
from safevine.ingest.source import csv_rows

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


def parse_entry(row: Mapping[str, Any]) -> RosterEntry:
    return RosterEntry(
        _taken_at(row.get("snapshot_at")), _facility(row.get("facility_code")), _person(row)
    )


def parse_roster_csv(lines: Iterable[bytes], source: str) -> Iterator[Parsed[RosterEntry]]:
    """Check the header at once (raises UnreadableSourceError), then parse rows lazily."""
    _, rows = csv_rows(lines, REQUIRED, source)
    return parse_csv_rows(rows, parse_entry)


# A national roster repeats one time, a few hundred names, dates and countries millions
# of times; the checks below are pure, so their answers are cached (a FieldError is
# raised afresh each time, never cached). They check exactly what `parse_person` checks,
# in the same order, with the same fields and reasons.


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

"""Facility lists as CSV: safevine's own columns, or ICE's FOIA list exactly as published.

ICE's list has no codes, and names repeat across states (several POLK COUNTY JAILs), so a
stable code is derived from name, city and state together.
"""

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import us

from safevine.domain.errors import FieldError
from safevine.domain.feed_health import LONGEST_CADENCE_MINUTES
from safevine.domain.value_ranges import check_time_zone
from safevine.ingest.fields import text, whole_number
from safevine.ingest.parsed import Parsed, parse_csv_rows
from safevine.ingest.source import UnreadableSourceError, csv_rows
from safevine.store.records.facilities import FacilityInput

ICE_COLUMNS = ("name", "city", "st", "zip", "aor", "type")
OWN_COLUMNS = ("code", "name")
_CODE = re.compile(r"[A-Z0-9][A-Z0-9_-]{0,39}")
# A cadence in hours: a plain decimal (no exponent, no sign), between a minute and a year.
_HOURS = re.compile(r"[0-9]{1,4}(\.[0-9]{1,4})?")
CADENCES = ("roster_every_hours", "events_every_hours", "down_after_hours")
_SPACES = re.compile(r"\s+")


def ice_facility_code(name: str, city: str, state: str) -> str:
    """`ICE-AZ-3F9A1C`: the state, then a short hash of the whitespace-normalised identity."""
    identity = "|".join(_SPACES.sub(" ", part).strip().upper() for part in (name, city, state))
    return f"ICE-{state.upper()}-{hashlib.sha256(identity.encode()).hexdigest()[:6].upper()}"


def state_time_zone(state: str | None) -> str | None:
    """The time zone of the state's capital: right for most facilities in a state.

    States that span zones (Texas, Indiana...) need `time_zone` in safevine's own format.
    """
    found = us.states.lookup(state) if state else None
    return str(found.capital_tz) if found is not None and found.capital_tz else None


def _count(row: Mapping[str, Any], key: str, field: str) -> int | None:
    value = row.get(key, "").replace(",", "").strip()
    if not value:
        return None
    if not (value.isascii() and value.isdigit()):
        raise FieldError(field, f"{value[:40]!r} is not a whole number")
    return whole_number(value, field)


def _minutes(row: Mapping[str, Any], key: str) -> int | None:
    """An optional cadence column, in hours, as whole minutes; blank means not set here."""
    value = str(row.get(key) or "").strip()
    if not value:
        return None
    if not (value.isascii() and _HOURS.fullmatch(value)):
        raise FieldError(key, f"{value[:40]!r} is not a number of hours, such as 24 or 0.25")
    minutes = round(float(value) * 60)
    if not 1 <= minutes <= LONGEST_CADENCE_MINUTES:
        raise FieldError(key, "must be between one minute (0.02) and a year (8760)")
    return minutes


def _state(row: Mapping[str, Any], key: str) -> str | None:
    value = text(row, key, key, required=False, limit=2)
    if value is None:
        return None
    if us.states.lookup(value) is None:
        raise FieldError(key, f"{value!r} is not a US state or territory code")
    return value.upper()


def _from_ice(row: Mapping[str, Any]) -> FacilityInput:
    name = text(row, "name", "NAME", required=True) or ""
    city = text(row, "city", "CITY", required=True, limit=100) or ""
    state = _state(row, "st") or ""
    if not state:
        raise FieldError("ST", "is required")
    return FacilityInput(
        code=ice_facility_code(name, city, state),
        name=name,
        city=city,
        state=state,
        # ICE's ZIPs are kept as given: some are malformed, and the code does not use them.
        postal_code=text(row, "zip", "ZIP", required=False, limit=10),
        facility_type=text(row, "type", "TYPE", required=False, limit=20),
        area_of_responsibility=text(row, "aor", "AOR", required=False, limit=10),
        time_zone=state_time_zone(state),
        average_population=_count(row, "fy07", "FY07"),
        max_population=_count(row, "max fy07", "Max FY07"),
    )


def _from_own(row: Mapping[str, Any]) -> FacilityInput:
    code = (text(row, "code", "code", required=True, limit=40) or "").upper()
    if not _CODE.fullmatch(code):
        raise FieldError("code", "may hold only letters, digits, '-' and '_'")
    state = _state(row, "state")
    return FacilityInput(
        code=code,
        name=text(row, "name", "name", required=True) or "",
        address=text(row, "address", "address", required=False),
        city=text(row, "city", "city", required=False, limit=100),
        state=state,
        postal_code=text(row, "postal_code", "postal_code", required=False, limit=10),
        phone=text(row, "phone", "phone", required=False, limit=40),
        facility_type=text(row, "type", "type", required=False, limit=20),
        time_zone=_time_zone(row) or state_time_zone(state),
        roster_every_minutes=_minutes(row, "roster_every_hours"),
        events_every_minutes=_minutes(row, "events_every_hours"),
        down_after_minutes=_minutes(row, "down_after_hours"),
    )


def _time_zone(row: Mapping[str, Any]) -> str | None:
    value = text(row, "time_zone", "time_zone", required=False, limit=64)
    return None if value is None else check_time_zone(value, "time_zone")


def parse_facilities_csv(lines: Iterable[bytes], source: str) -> Iterator[Parsed[FacilityInput]]:
    """Detect the format from the header (raises UnreadableSourceError), then parse rows lazily."""
    header, rows = csv_rows(lines, (), source)
    convert: Callable[[Mapping[str, Any]], FacilityInput]
    if set(OWN_COLUMNS) <= set(header):
        convert = _from_own
    elif set(ICE_COLUMNS) <= set(header):
        convert = _from_ice
    else:
        raise UnreadableSourceError(
            f"{source}: header has neither safevine's columns ({', '.join(OWN_COLUMNS)}, ...) "
            f"nor ICE's ({', '.join(c.upper() for c in ICE_COLUMNS)}, ...)"
        )
    return parse_csv_rows(rows, convert)

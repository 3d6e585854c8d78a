"""Turning one feed record (already shaped as a mapping) into a validated custody event.

Both event formats, JSON Lines and CSV, produce the same nested mapping and come here,
so they accept exactly the same things and reject with the same reasons.
"""

from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from safevine.domain.a_number import normalise_a_number
from safevine.domain.country import resolve_country
from safevine.domain.custody_event import CustodyEventInput, PersonFacts
from safevine.domain.errors import FieldError
from safevine.domain.event_content import EventContent, event_content
from safevine.domain.event_kinds import KINDS_NEEDING_FACILITY, EventKind, ReleaseReason
from safevine.domain.names import PersonName
from safevine.domain.protection import Protection
from safevine.domain.value_ranges import HEARING_AHEAD, MAX_SEQUENCE, NAME_LENGTH
from safevine.ingest.fields import birth_date, text, timestamp, whole_number

# Detail fields each kind accepts; anything else is a mistake worth reporting.
_DETAILS: dict[EventKind, frozenset[str]] = {
    EventKind.RELEASED: frozenset({"reason"}),
    EventKind.REMOVED: frozenset({"destination_country"}),
    EventKind.HEARING_SCHEDULED: frozenset({"court", "hearing_at"}),
    EventKind.TRANSFERRED: frozenset({"from_facility_code"}),
}


def parse_protection(value: str | None, field: str) -> Protection | None:
    """`protected` or `cleared`; None when absent. Raises FieldError for anything else."""
    if value is None:
        return None
    folded = value.strip().lower()
    if folded in (Protection.PROTECTED, Protection.CLEARED):
        return Protection(folded)
    raise FieldError(field, f"{value!r} is not 'protected' or 'cleared'")


@lru_cache(maxsize=16)
def _person_fields(prefix: str) -> dict[str, str]:
    """The error names of a person's fields under `prefix`, built once, not per record."""
    keys = ("a_number", "given_name", "family_name", "aliases", "date_of_birth",
            "country_of_birth", "protection")  # fmt: skip
    return {key: f"{prefix}{key}" for key in keys}


def parse_person(record: Mapping[str, Any], prefix: str = "person.") -> PersonFacts:
    """Person facts from a mapping with a_number, names, aliases, birth facts, protection."""
    field = _person_fields(prefix)
    a_number = normalise_a_number(
        text(record, "a_number", field["a_number"], required=True) or "", field["a_number"]
    )
    given = text(record, "given_name", field["given_name"], required=False, limit=NAME_LENGTH)
    family = text(record, "family_name", field["family_name"], required=False, limit=NAME_LENGTH)
    if (given is None) != (family is None):
        missing = "given_name" if given is None else "family_name"
        raise FieldError(field[missing], "is required when the other name is given")
    name = PersonName.parse(given, family, prefix.rstrip(".")) if given and family else None
    aliases = tuple(_aliases(record.get("aliases"), field["aliases"]))
    dob_text = text(record, "date_of_birth", field["date_of_birth"], required=False)
    today = datetime.now(UTC).date()
    dob = birth_date(dob_text, field["date_of_birth"], today) if dob_text else None
    country_text = text(record, "country_of_birth", field["country_of_birth"], required=False)
    country = resolve_country(country_text, field["country_of_birth"]) if country_text else None
    protection = parse_protection(
        text(record, "protection", field["protection"], required=False), field["protection"]
    )
    return PersonFacts(a_number, name, aliases, dob, country, protection)


def _aliases(value: Any, field: str) -> list[PersonName]:
    if value is None or value == "":
        return []
    if not isinstance(value, list):
        raise FieldError(field, "must be a list of {given_name, family_name} objects")
    names = []
    for position, item in enumerate(value):
        where = f"{field}[{position}]"
        if not isinstance(item, Mapping):
            raise FieldError(where, "must be an object with given_name and family_name")
        given = text(item, "given_name", f"{where}.given_name", required=True, limit=NAME_LENGTH)
        family = text(item, "family_name", f"{where}.family_name", required=True, limit=NAME_LENGTH)
        names.append(PersonName.parse(given or "", family or "", where))
    return names


def parse_event(record: Mapping[str, Any]) -> CustodyEventInput:
    """A CustodyEventInput from one nested feed record. Raises FieldError naming the field."""
    event_id = text(record, "event_id", "event_id", required=True) or ""
    kind_text = text(record, "kind", "kind", required=True) or ""
    try:
        kind = EventKind(kind_text.lower())
    except ValueError:
        allowed = ", ".join(k.value for k in EventKind)
        raise FieldError("kind", f"{kind_text!r} is not one of {allowed}") from None
    occurred_at = timestamp(
        text(record, "occurred_at", "occurred_at", required=True) or "", "occurred_at"
    )
    facility = text(
        record, "facility_code", "facility_code", required=kind in KINDS_NEEDING_FACILITY, limit=40
    )
    sequence = record.get("sequence")
    sequence_number = (
        0 if sequence in (None, "") else whole_number(sequence, "sequence", MAX_SEQUENCE)
    )
    person = record.get("person")
    if not isinstance(person, Mapping):
        raise FieldError("person", "is required: an object with at least a_number")
    details = parse_details(kind, record.get("details") or {})
    return CustodyEventInput(
        event_id=event_id,
        kind=kind,
        occurred_at=occurred_at,
        person=parse_person(person),
        facility_code=facility.upper() if facility else None,
        sequence=sequence_number,
        details=details,
    )


def stored_content(event: CustodyEventInput) -> EventContent | None:
    """`event_content(event)` for the writer, worked out with the parsing; None where that
    fails, so that the writer works it out again and refuses the record alone."""
    try:
        return event_content(event)
    except Exception:
        return None


def parse_details(kind: EventKind, details: Any) -> dict[str, Any]:
    """A kind's details, checked; FieldError naming `details.<field>` otherwise."""
    if not isinstance(details, Mapping):
        raise FieldError("details", "must be an object")
    allowed = _DETAILS.get(kind, frozenset())
    for key in details:
        if key not in allowed and details[key] not in (None, ""):
            raise FieldError(f"details.{key}", f"is not a field of a {kind.value} event")
    if kind == EventKind.RELEASED:
        reason = text(details, "reason", "details.reason", required=False) or ReleaseReason.UNKNOWN
        try:
            return {"reason": ReleaseReason(reason.lower()).value}
        except ValueError:
            allowed_reasons = ", ".join(r.value for r in ReleaseReason)
            raise FieldError(
                "details.reason", f"{reason!r} is not one of {allowed_reasons}"
            ) from None
    if kind == EventKind.REMOVED:
        raw = text(details, "destination_country", "details.destination_country", required=True)
        return {"destination_country": resolve_country(raw or "", "details.destination_country")}
    if kind == EventKind.HEARING_SCHEDULED:
        court = text(details, "court", "details.court", required=True)
        when = timestamp(
            text(details, "hearing_at", "details.hearing_at", required=True) or "",
            "details.hearing_at",
            HEARING_AHEAD,
        )
        return {"court": court, "hearing_at": when.isoformat()}
    if kind == EventKind.TRANSFERRED:
        origin = text(
            details, "from_facility_code", "details.from_facility_code", required=False, limit=40
        )
        return {"from_facility_code": origin.upper()} if origin else {}
    return {}


def asserted_protection(record: Mapping[str, Any]) -> tuple[str, Protection] | None:
    """From a record that failed validation: (A-number, protected) if it asks for protection.

    Fail closed: a rejected record that says `protected`, or whose protection value cannot
    be read, still protects the person when its A-number can be read.
    """
    person = record.get("person") if "person" in record else record
    if not isinstance(person, Mapping):
        return None
    value = person.get("protection")
    if value in (None, "") or (isinstance(value, str) and value.strip().lower() == "cleared"):
        return None
    try:
        return normalise_a_number(str(person.get("a_number") or "")), Protection.PROTECTED
    except FieldError:
        return None


def protection_part(record: Mapping[str, Any]) -> Mapping[str, Any]:
    """What `asserted_protection` reads of `record`, as flat values that give the same
    answer: a parsed record carries this, not the whole record, as it may be sent between
    processes (`parse_process`), and a value nested hundreds deep cannot be pickled."""
    person = record.get("person") if "person" in record else record
    if not isinstance(person, Mapping):
        return {}
    part: dict[str, Any] = {}
    if "a_number" in person:
        part["a_number"] = str(person["a_number"] or "")
    if "protection" in person:
        value = person["protection"]
        # Any value but text or nothing asks for protection (fail closed).
        part["protection"] = value if value is None or isinstance(value, str) else True
    return {"person": part}

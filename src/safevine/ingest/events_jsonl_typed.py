"""The usual line of a JSON Lines event feed, decoded by its types in C.

`events_jsonl.read_jsonl_record` reads any line and refuses a bad one naming its field.
Nearly every line of a real feed has one shape: text where text belongs, no key the
format does not name. msgspec decodes such a line straight into typed fields, several
times cheaper than `json.loads` and the reference reader's test of each value's type;
the values are then checked by the same functions the reference reader uses.

Anything else (another shape, a number where text belongs, a value a check refuses, a
protection) gives None here and is read by the reference reader, which alone writes a
reject. So the two cannot disagree on a line this reads: tests/ingest/
test_events_jsonl_typed.py holds them equal on drawn lines.
"""

import re
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from safevine.domain.a_number import normalise_a_number
from safevine.domain.country import resolve_country
from safevine.domain.custody_event import CustodyEventInput, PersonFacts
from safevine.domain.event_kinds import KINDS_NEEDING_FACILITY, EventKind
from safevine.domain.names import PersonName
from safevine.domain.value_ranges import CODE_LENGTH, MAX_SEQUENCE, NAME_LENGTH, TEXT_LENGTH
from safevine.ingest.event_record import parse_details, stored_content
from safevine.ingest.fields import birth_date, timestamp, whole_number
from safevine.ingest.parsed import Parsed

# Lengths are checked while decoding; the rest of what `fields.text` checks is checked by
# `_kept`, once a line.
_Text = Annotated[str, Meta(max_length=TEXT_LENGTH)]
_Code = Annotated[str, Meta(max_length=CODE_LENGTH)]
_Name = Annotated[str, Meta(max_length=NAME_LENGTH)]


# Every struct forbids keys it does not name: the reference reader ignores them, but a
# value msgspec skips unread is one whose reading could differ (json.loads refuses an
# integer of 4,301 digits anywhere in a line).
class _Alias(Struct, forbid_unknown_fields=True):
    given_name: _Name
    family_name: _Name


class _Person(Struct, forbid_unknown_fields=True):
    a_number: _Text
    given_name: _Name | None = None
    family_name: _Name | None = None
    aliases: list[_Alias] | None = None
    date_of_birth: _Text | None = None
    country_of_birth: _Text | None = None
    # Absent and null differ in what a reject keeps (`protection_part`).
    protection: UnsetType | None = UNSET


class _Event(Struct, forbid_unknown_fields=True):
    event_id: _Text
    kind: _Text
    occurred_at: _Text
    person: _Person
    facility_code: _Code | None = None
    sequence: int | None = None
    details: dict[str, str | None] | None = None


_DECODER = msgspec.json.Decoder(_Event)
_KINDS = {kind.value: kind for kind in EventKind}


class _DeclinedError(Exception):
    """The line is left to the reference reader."""


def typed_jsonl_record(number: int, raw: str) -> Parsed[CustodyEventInput] | None:
    """The line's Parsed, equal to the reference reader's; None when it is not the usual
    shape or any value is refused (the reference reader then says why)."""
    try:
        record = _DECODER.decode(raw)
        if not _kept(raw, record):
            return None
        event = _event(record)
    except Exception:
        # msgspec's errors, a FieldError, _DeclinedError: none is this reader's to report.
        return None
    person = record.person
    claim: dict[str, Any] = {"a_number": person.a_number}
    if person.protection is None:
        claim["protection"] = None
    return Parsed(number, raw, event, record={"person": claim}, content=stored_content(event))


# What `check_text` refuses: C0 and C1 controls and DEL (msgspec refuses a lone surrogate).
_REFUSED = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _kept(raw: str, record: _Event) -> bool:
    """True when `fields.text` keeps each of the record's text values as it is: nothing
    to strip, nothing it refuses. A line with no escapes shows every value as it is, so
    the usual line is tested whole, in C, rather than value by value."""
    if "\\" not in raw and raw.isprintable():
        # Every quote then delimits a text, and the only whitespace is the space.
        texts = "\n".join(raw.split('"')[1::2])
        return not (texts[:1] == " " or texts[-1:] == " " or " \n" in texts or "\n " in texts)
    person = record.person
    values = [record.event_id, record.kind, record.occurred_at, record.facility_code,
              person.a_number, person.given_name, person.family_name, person.date_of_birth,
              person.country_of_birth]  # fmt: skip
    for alias in person.aliases or ():
        values += (alias.given_name, alias.family_name)
    return all(
        value is None
        or (value == value.strip() and (value.isprintable() or not _REFUSED.search(value)))
        for value in values
    )


def _event(record: _Event) -> CustodyEventInput:
    kind = _KINDS.get(record.kind.lower())
    if kind is None or not record.event_id or not record.occurred_at:
        raise _DeclinedError
    facility = record.facility_code
    if not facility and kind in KINDS_NEEDING_FACILITY:
        raise _DeclinedError
    sequence = record.sequence
    return CustodyEventInput(
        event_id=record.event_id,
        kind=kind,
        occurred_at=timestamp(record.occurred_at, "occurred_at"),
        person=_person(record.person),
        facility_code=facility.upper() if facility else None,
        sequence=0 if sequence is None else whole_number(sequence, "sequence", MAX_SEQUENCE),
        details=parse_details(kind, record.details or {}),
    )


def _person(person: _Person) -> PersonFacts:
    given, family = person.given_name or None, person.family_name or None
    if not person.a_number or (given is None) != (family is None):
        raise _DeclinedError
    born, country = person.date_of_birth, person.country_of_birth
    return PersonFacts(
        normalise_a_number(person.a_number, "person.a_number"),
        PersonName.parse(given, family, "person") if given and family else None,
        tuple(
            PersonName.parse(alias.given_name, alias.family_name, f"person.aliases[{position}]")
            for position, alias in enumerate(person.aliases or ())
        ),
        birth_date(born, "person.date_of_birth", datetime.now(UTC).date()) if born else None,
        resolve_country(country, "person.country_of_birth") if country else None,
        None,
    )

"""Persons by A-number: created on first sight, facts filled in, names and aliases kept."""

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, update

from safevine.domain.custody_event import PersonFacts
from safevine.domain.errors import FieldError
from safevine.domain.names import PersonName
from safevine.store.driver_sql import Driver
from safevine.store.member_of import values_by_key
from safevine.store.schema import person_names, persons


def new_public_ref() -> str:
    """128 random bits: unguessable, and unrelated to any id or identifier."""
    return secrets.token_urlsafe(16)


@dataclass
class _Person:
    id: int | None
    given_name: str | None
    family_name: str | None
    date_of_birth: date | None
    country_of_birth: str | None
    is_new: bool = False
    dirty: bool = False
    names: list[tuple[PersonName, bool]] = field(default_factory=list)

    def primary_name(self) -> tuple[str, str]:
        return self.given_name or "", self.family_name or ""


_BIRTH_FACTS = (("date_of_birth", "date of birth"), ("country_of_birth", "country of birth"))


def _conflict(person: _Person, facts: PersonFacts) -> FieldError | None:
    """A birth fact that contradicts the record: an error, never an overwrite."""
    for attr, words in _BIRTH_FACTS:
        told, known = getattr(facts, attr), getattr(person, attr)
        if told is not None and known is not None and told != known:
            return FieldError(
                f"person.{attr}",
                f"differs from the {words} on record for this A-number; "
                "correct the feed, or the record with staff tools",
            )
    return None


def _merge(person: _Person, facts: PersonFacts) -> None:
    """Fill in what the record lacks; keep every name not yet on record."""
    for attr, _ in _BIRTH_FACTS:
        told = getattr(facts, attr)
        if told is not None and getattr(person, attr) is None:
            setattr(person, attr, told)
            person.dirty = True
    if facts.name is not None:
        primary = person.given_name is None
        if primary:
            person.given_name, person.family_name = facts.name.given, facts.name.family
            person.dirty = True
        # The primary name always has its person_names row (written with it below), so
        # the name most records repeat needs no lookup.
        if primary or facts.name.key != PersonName(*person.primary_name()).key:
            person.names.append((facts.name, primary))
    person.names.extend((alias, False) for alias in facts.aliases)


def _day(value: date | str | None) -> date | None:
    """A Date column as read through the driver (SQLite keeps ISO text)."""
    return date.fromisoformat(value) if isinstance(value, str) else value


def resolve_persons(
    connection: Connection, facts: Sequence[PersonFacts], now: datetime
) -> list[int | FieldError]:
    """The person id for each of `facts`, in order, or the FieldError that stopped it.

    Unknown A-numbers become new `unscreened` persons. Known ones get missing facts filled
    in; another spelling of the name becomes an alias. A date or country of birth that
    contradicts the record rejects that one record and changes nothing for it.
    """
    driver = Driver(connection)
    known: dict[str, _Person] = {
        a_number: _Person(person_id, given, family, _day(dob), country)
        for person_id, a_number, given, family, dob, country in driver.rows(
            "SELECT id, a_number, given_name, family_name, date_of_birth, country_of_birth "
            "FROM persons WHERE a_number = ANY(?::text[])",
            [driver.keys(sorted({f.a_number for f in facts}))],
        )
    }
    outcome: list[str | FieldError] = []
    for item in facts:
        person = known.get(item.a_number)
        if person is None:
            person = known[item.a_number] = _Person(None, None, None, None, None, is_new=True)
        # A record that conflicts leaves no trace: it is checked before anything is merged.
        error = _conflict(person, item)
        if error is None:
            _merge(person, item)
        outcome.append(error if error is not None else item.a_number)
    ids = _write(connection, known, now)
    return [o if isinstance(o, FieldError) else ids[o] for o in outcome]


# Facts filled in on known persons, one executemany: each row's keys are the SET clause.
_FILL_IN = update(persons).where(persons.c.id == bindparam("person_id"))


def _write(connection: Connection, known: dict[str, _Person], now: datetime) -> dict[str, int]:
    def values(p: _Person) -> dict[str, Any]:
        return {
            "given_name": p.given_name,
            "family_name": p.family_name,
            "date_of_birth": p.date_of_birth,
            "country_of_birth": p.country_of_birth,
            "updated_at": now,
        }

    new = [(a, p) for a, p in known.items() if p.is_new]
    if new:
        rows = [
            {**values(p), "a_number": a, "public_ref": new_public_ref(), "created_at": now}
            for a, p in new
        ]
        result = connection.execute(
            insert(persons).returning(persons.c.id, persons.c.a_number),
            rows,
        )
        for person_id, a_number in result:
            known[a_number].id = person_id
    changed = [{"person_id": p.id, **values(p)} for p in known.values() if p.dirty and not p.is_new]
    if changed:
        connection.execute(_FILL_IN, changed)
    _add_names(connection, known)
    return {a: int(p.id) for a, p in known.items() if p.id is not None}


def _add_names(connection: Connection, known: dict[str, _Person]) -> None:
    with_names = [p for p in known.values() if p.names]
    if not with_names:
        return
    driver = Driver(connection)
    have: set[tuple[int, str, str]] = {
        (int(person_id), given_key, family_key)
        for person_id, given_key, family_key in driver.rows(
            "SELECT person_id, given_key, family_key FROM person_names "
            "WHERE person_id = ANY(?::bigint[])",
            [driver.keys(p.id for p in with_names if not p.is_new)],
        )
    }
    rows_to_add = []
    for person in with_names:
        assert person.id is not None
        for name, primary in person.names:
            key = (person.id, *name.key)
            if key in have:
                continue
            have.add(key)
            rows_to_add.append(
                {
                    "person_id": person.id,
                    "given_name": name.given,
                    "family_name": name.family,
                    "given_key": key[1],
                    "family_key": key[2],
                    "is_primary": int(primary),
                }
            )
    if rows_to_add:
        connection.execute(insert(person_names), rows_to_add)


def person_ids_by_a_number(connection: Connection, a_numbers: Iterable[str]) -> dict[str, int]:
    return values_by_key(connection, persons.c.a_number, persons.c.id, sorted(set(a_numbers)))

"""Exact lookups in the public projection. Nothing here can see a non-public person."""

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Select, bindparam, func, select

from safevine.store.public.views import public_person_names, public_persons


@dataclass(frozen=True)
class PublicPerson:
    """What a public surface may show about a person, and nothing more."""

    public_ref: str
    given_name: str | None
    family_name: str | None
    country_of_birth: str | None
    custody_state: str
    status_since: datetime
    last_changed_at: datetime
    facility_name: str | None
    facility_address: str | None
    facility_city: str | None
    facility_state: str | None
    facility_postal_code: str | None
    facility_phone: str | None
    facility_time_zone: str | None


_SHOWN = [public_persons.c[name] for name in PublicPerson.__dataclass_fields__]


# Built once: constructing a statement costs far more than running it on an index.
BY_A_NUMBER = select(*_SHOWN).where(
    public_persons.c.a_number == bindparam("a_number"),
    public_persons.c.country_of_birth == bindparam("country"),
)


def _names_statement(with_birth: bool) -> Select[Any]:
    names = select(public_person_names.c.public_ref).where(
        public_person_names.c.given_key == bindparam("given_key"),
        public_person_names.c.family_key == bindparam("family_key"),
    )
    if with_birth:
        names = names.where(public_person_names.c.date_of_birth == bindparam("date_of_birth"))
    return names


# Names first, then persons by reference: PostgreSQL cannot drive a semi-join into a
# security_barrier view, so one statement would read every public person of the country.
NAMES = _names_statement(with_birth=False)
NAMES_AND_BIRTH = _names_statement(with_birth=True)
BY_REFS = (
    select(*_SHOWN)
    .where(
        public_persons.c.public_ref.in_(bindparam("refs", expanding=True)),
        public_persons.c.country_of_birth == bindparam("country"),
    )
    .order_by(public_persons.c.family_name, public_persons.c.given_name)
)


def by_a_number(connection: Connection, a_number: str, country: str) -> list[PublicPerson]:
    """Public persons with this canonical A-number and country of birth (zero or one)."""
    rows = connection.execute(BY_A_NUMBER, {"a_number": a_number, "country": country})
    return [PublicPerson(**row._mapping) for row in rows]


def by_name(
    connection: Connection,
    given_key: str,
    family_key: str,
    country: str,
    date_of_birth: date | None = None,
) -> list[PublicPerson]:
    """Public persons known by exactly this folded name (or alias) and country."""
    values: dict[str, object] = {"given_key": given_key, "family_key": family_key}
    if date_of_birth is None:
        found = connection.execute(NAMES, values)
    else:
        found = connection.execute(NAMES_AND_BIRTH, {**values, "date_of_birth": date_of_birth})
    # A miss and a hidden person both end here, the same way: neither has a public name.
    refs = sorted(set(found.scalars()))
    if not refs:
        return []
    rows = connection.execute(BY_REFS, {"refs": refs, "country": country})
    return [PublicPerson(**row._mapping) for row in rows]


def by_reference(connection: Connection, refs: list[str]) -> list[PublicPerson]:
    """Public persons among these opaque references (for registrations and messages)."""
    if not refs:
        return []
    rows = connection.execute(select(*_SHOWN).where(public_persons.c.public_ref.in_(refs)))
    return [PublicPerson(**row._mapping) for row in rows]


def public_count(connection: Connection) -> int:
    return int(connection.execute(select(func.count()).select_from(public_persons)).scalar_one())

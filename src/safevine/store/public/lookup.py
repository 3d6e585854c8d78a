"""Exact lookups in the public projection. Nothing here can see a non-public person.

Searches go through the searches of migrations 0010 and 0011, which do the same work for
a hidden person as for nobody; references and counts through the `public_persons` view.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from sqlalchemy import Connection, Date, Select, String, bindparam, func, select

from safevine.store.public.views import (
    SEARCH_BY_A_NUMBER,
    SEARCH_BY_NAME,
    postgres_search,
    public_persons,
    sqlite_search_by_a_number,
    sqlite_search_by_name,
)


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


_FIELDS = list(PublicPerson.__dataclass_fields__)
_SHOWN = [public_persons.c[name] for name in _FIELDS]

_A_NUMBER = (bindparam("a_number", type_=String), bindparam("country", type_=String))
_NAME = (
    bindparam("given_key", type_=String),
    bindparam("family_key", type_=String),
    bindparam("country", type_=String),
    bindparam("date_of_birth", type_=Date),
)


@dataclass(frozen=True)
class Searches:
    """The two searches for one dialect; parameters a_number and country, or given_key,
    family_key, country and date_of_birth (None for any)."""

    by_a_number: Select[Any]
    by_name: Select[Any]


def _searches(dialect: str) -> Searches:
    if dialect == "postgresql":
        by_a_number = postgres_search(getattr(func, SEARCH_BY_A_NUMBER)(*_A_NUMBER))
        by_name = postgres_search(getattr(func, SEARCH_BY_NAME)(*_NAME))
        a_number_columns: Sequence[Any] = [by_a_number.c[name] for name in _FIELDS]
        name_columns: Sequence[Any] = [by_name.c[name] for name in _FIELDS]
        return Searches(
            select(*a_number_columns),
            select(*name_columns).order_by(by_name.c.family_name, by_name.c.given_name),
        )
    a, n = sqlite_search_by_a_number, sqlite_search_by_name
    return Searches(
        select(*[a.c[name] for name in _FIELDS]).where(a.c.query == func.json_array(*_A_NUMBER)),
        select(*[n.c[name] for name in _FIELDS])
        .where(n.c.query == func.json_array(*_NAME))
        .order_by(n.c.family_name, n.c.given_name),
    )


# Built once: constructing a statement costs far more than running it on an index.
SEARCHES = {dialect: _searches(dialect) for dialect in ("sqlite", "postgresql")}
# Public persons by reference: what a replica's answer is confirmed with on the primary.
BY_REFERENCE = select(*_SHOWN).where(
    public_persons.c.public_ref.in_(bindparam("refs", expanding=True))
)


class Lookups(Protocol):
    """What a public search looks up with, called as plain functions: `PreparedLookups`.
    (On PostgreSQL the search awaits its lookups instead: `AwaitedLookups` on one database,
    `ReplicaLookups` on replicas confirmed by the primary.) `blocks`: a lookup waits on the
    network, so it must leave the serving thread."""

    blocks: bool

    def by_a_number(self, a_number: str, country: str) -> list["PublicPerson"]: ...

    def by_name(
        self, given_key: str, family_key: str, country: str, date_of_birth: date | None = None
    ) -> list["PublicPerson"]: ...


def by_a_number(connection: Connection, a_number: str, country: str) -> list[PublicPerson]:
    """Public persons with this canonical A-number and country of birth (zero or one)."""
    statement = SEARCHES[connection.dialect.name].by_a_number
    rows = connection.execute(statement, {"a_number": a_number, "country": country})
    return [PublicPerson(**row._mapping) for row in rows]


def name_values(
    given_key: str, family_key: str, country: str, date_of_birth: date | None
) -> dict[str, Any]:
    """The parameters of the search by name (every form of it binds these)."""
    return {
        "given_key": given_key,
        "family_key": family_key,
        "country": country,
        "date_of_birth": date_of_birth,
    }


def by_name(
    connection: Connection,
    given_key: str,
    family_key: str,
    country: str,
    date_of_birth: date | None = None,
) -> list[PublicPerson]:
    """Public persons known by exactly this folded name (or alias) and country."""
    statement = SEARCHES[connection.dialect.name].by_name
    values = name_values(given_key, family_key, country, date_of_birth)
    return [PublicPerson(**row._mapping) for row in connection.execute(statement, values)]


def by_reference(connection: Connection, refs: list[str]) -> list[PublicPerson]:
    """Public persons among these opaque references (for registrations and messages)."""
    if not refs:
        return []
    rows = connection.execute(BY_REFERENCE, {"refs": refs})
    return [PublicPerson(**row._mapping) for row in rows]


def public_count(connection: Connection) -> int:
    return int(connection.execute(select(func.count()).select_from(public_persons)).scalar_one())

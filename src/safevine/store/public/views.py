"""The public views and searches as SQLAlchemy selectables (the migrations create them)."""

from sqlalchemy import Column, Date, MetaData, String, Table
from sqlalchemy.sql.elements import ColumnClause
from sqlalchemy.sql.functions import Function
from sqlalchemy.sql.selectable import TableValuedAlias

from safevine.store.types import UTCDateTime

# Kept apart from the schema metadata: these are views, never created by create_all.
_views = MetaData()


def _shown() -> list[Column[object]]:
    """What a public search answers with, in this order (`lookup.PublicPerson`)."""
    return [
        Column("public_ref", String(32)),
        Column("given_name", String(100)),
        Column("family_name", String(100)),
        Column("country_of_birth", String(2)),
        Column("custody_state", String(12)),
        Column("status_since", UTCDateTime),
        Column("last_changed_at", UTCDateTime),
        Column("facility_name", String(200)),
        Column("facility_address", String(200)),
        Column("facility_city", String(100)),
        Column("facility_state", String(2)),
        Column("facility_postal_code", String(10)),
        Column("facility_phone", String(40)),
        Column("facility_time_zone", String(64)),
    ]


public_persons = Table("public_persons", _views, Column("a_number", String(9)), *_shown())

public_person_names = Table(
    "public_person_names",
    _views,
    Column("public_ref", String(32)),
    Column("given_key", String(100)),
    Column("family_key", String(100)),
    Column("date_of_birth", Date),
)

# The searches (migrations 0010 and 0011). On SQLite, views that take the search as a JSON array in
# `query`; on PostgreSQL, functions of the same names returning the same columns.
SEARCH_BY_A_NUMBER = "public_search_by_a_number"
SEARCH_BY_NAME = "public_search_by_name"

sqlite_search_by_a_number = Table(SEARCH_BY_A_NUMBER, _views, Column("query", String), *_shown())
sqlite_search_by_name = Table(SEARCH_BY_NAME, _views, Column("query", String), *_shown())


def postgres_search(function: Function[object]) -> TableValuedAlias:
    """A call of one of the search functions, as a table of `_shown()`'s columns."""
    columns: list[ColumnClause[object]] = [ColumnClause(c.name, c.type) for c in _shown()]
    return function.table_valued(*columns)

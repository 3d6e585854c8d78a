"""The public views as SQLAlchemy selectables (the migrations create them)."""

from sqlalchemy import Column, Date, MetaData, String, Table

from safevine.store.types import UTCDateTime

# Kept apart from the schema metadata: these are views, never created by create_all.
_views = MetaData()

public_persons = Table(
    "public_persons",
    _views,
    Column("public_ref", String(32)),
    Column("a_number", String(9)),
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
)

public_person_names = Table(
    "public_person_names",
    _views,
    Column("public_ref", String(32)),
    Column("given_key", String(100)),
    Column("family_key", String(100)),
    Column("date_of_birth", Date),
)

"""Facilities: loaded by code, updated in place when a list is loaded again."""

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, insert, select, update

from safevine.store.driver_sql import Driver
from safevine.store.schema import facilities


@dataclass(frozen=True)
class FacilityInput:
    code: str
    name: str
    address: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    phone: str | None = None
    facility_type: str | None = None
    area_of_responsibility: str | None = None
    time_zone: str | None = None
    average_population: int | None = None
    max_population: int | None = None
    # Set cadences; None leaves what is stored (staff may have set them in the console).
    roster_every_minutes: int | None = None
    events_every_minutes: int | None = None
    down_after_minutes: int | None = None


_CADENCES = ("roster_every_minutes", "events_every_minutes", "down_after_minutes")


@dataclass(frozen=True)
class FacilityUpsert:
    inserted: int
    updated: int
    unchanged: int


def upsert_facilities(connection: Connection, items: Sequence[FacilityInput]) -> FacilityUpsert:
    """Insert new facilities and update changed ones; loading a list twice changes nothing."""
    existing = {
        row.code: row
        for row in connection.execute(
            select(facilities).where(facilities.c.code.in_([f.code for f in items]))
        )
    }
    now = datetime.now(UTC)
    new_rows, changed = [], []
    for item in items:
        values = {
            key: value
            for key, value in asdict(item).items()
            if value is not None or key not in _CADENCES
        }
        row = existing.get(item.code)
        if row is None:
            new_rows.append({**asdict(item), "updated_at": now})
        elif any(getattr(row, key) != value for key, value in values.items()):
            changed.append((row.id, {**values, "updated_at": now}))
    if new_rows:
        connection.execute(insert(facilities), new_rows)
    for facility_id, values in changed:
        connection.execute(update(facilities).where(facilities.c.id == facility_id).values(values))
    return FacilityUpsert(len(new_rows), len(changed), len(items) - len(new_rows) - len(changed))


def facility_ids(connection: Connection, codes: Iterable[str]) -> dict[str, int]:
    """Ids of the facilities among `codes` that exist. Straight to the driver, one key
    list as one parameter: a feed asks once a chunk for every facility it names."""
    wanted = sorted(set(codes))
    if not wanted:
        return {}
    driver = Driver(connection)
    return {
        code: int(facility_id)
        for code, facility_id in driver.rows(
            "SELECT code, id FROM facilities WHERE code = ANY(?::text[])", [driver.keys(wanted)]
        )
    }

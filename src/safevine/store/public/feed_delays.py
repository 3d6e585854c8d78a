"""Facilities whose information is delayed, from the `public_feed_delays` view (migration
0016): facility-level facts only, never a person."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Column, Connection, MetaData, String, Table, select

from safevine.store.types import UTCDateTime

_views = MetaData()
public_feed_delays = Table(
    "public_feed_delays",
    _views,
    Column("facility_name", String(200)),
    Column("facility_address", String(200)),
    Column("facility_city", String(100)),
    Column("facility_state", String(2)),
    Column("facility_postal_code", String(10)),
    Column("facility_phone", String(40)),
    Column("facility_time_zone", String(64)),
    Column("health", String(12)),  # late, down or paused
    Column("last_received", UTCDateTime),
)


@dataclass(frozen=True)
class FacilityDelay:
    facility_name: str
    facility_address: str | None
    facility_city: str | None
    facility_state: str | None
    facility_postal_code: str | None
    facility_phone: str | None
    facility_time_zone: str | None
    health: str
    last_received: datetime | None

    @property
    def place(self) -> tuple[str | None, ...]:
        """What a search result shows of its facility, to find its delay by."""
        return (
            self.facility_name,
            self.facility_address,
            self.facility_city,
            self.facility_state,
            self.facility_postal_code,
        )


def delays(connection: Connection) -> list[FacilityDelay]:
    rows = connection.execute(
        select(public_feed_delays).order_by(
            public_feed_delays.c.facility_name, public_feed_delays.c.facility_city
        )
    )
    return [FacilityDelay(**row._mapping) for row in rows]

"""The demo's facility that stops sending: the one holding the most public demo people,
set to send every minute and to be down after five, and never fed by the simulator. So a
few minutes into `make run` its people's results say their information may be out of
date, /delays lists it, the staff console's feed health page shows it down, and the
operations alert lands in the demo inbox."""

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, func, select

from safevine.actions import feed_health
from safevine.actions.actor import Actor
from safevine.demo.population import examples
from safevine.store.public.views import public_persons
from safevine.store.schema import custody_status, facilities, persons

# A cadence no real facility would be set to: how the demo finds its silent one again.
EVERY_HOURS = 1 / 60
DOWN_AFTER_HOURS = 5 / 60


@dataclass(frozen=True)
class SilentFacility:
    id: int
    code: str
    name: str
    # (A-number, name, country) of public people held there, to search for.
    people: list[tuple[str, str, str]]


def _already(engine: Engine) -> tuple[int, str, str] | None:
    with engine.connect() as connection:
        row = connection.execute(
            select(facilities.c.id, facilities.c.code, facilities.c.name).where(
                facilities.c.events_every_minutes == 1, facilities.c.down_after_minutes == 5
            )
        ).first()
    return (int(row.id), row.code, row.name) if row else None


def _busiest(engine: Engine) -> tuple[int, str, str] | None:
    held = func.count()
    with engine.connect() as connection:
        row = connection.execute(
            select(facilities.c.id, facilities.c.code, facilities.c.name)
            .join(custody_status, custody_status.c.facility_id == facilities.c.id)
            .join(persons, persons.c.id == custody_status.c.person_id)
            .join(public_persons, public_persons.c.public_ref == persons.c.public_ref)
            .where(custody_status.c.state == "in_custody")
            .group_by(facilities.c.id, facilities.c.code, facilities.c.name)
            .order_by(held.desc(), facilities.c.code)
            .limit(1)
        ).first()
    return (int(row.id), row.code, row.name) if row else None


def silence_one(engine: Engine) -> SilentFacility | None:
    """Choose (once) the facility that will stop sending, and set its cadence."""
    found = _already(engine)
    if found is None:
        found = _busiest(engine)
        if found is None:
            return None
        hours: dict[str, float | None] = {
            "roster_every": EVERY_HOURS,
            "events_every": EVERY_HOURS,
            "down_after": DOWN_AFTER_HOURS,
        }
        with engine.begin() as connection:
            feed_health.set_cadence(connection, Actor("demo"), found[1], hours, datetime.now(UTC))
    facility_id, code, name = found
    return SilentFacility(facility_id, code, name, examples(engine, 3, facility_id))

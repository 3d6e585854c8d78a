"""The demo's custody feed: every few seconds a custody event for a public demo person,
through the real ingest path, favouring people someone has registered for, so a newcomer
who registers sees a real notification arrive within a minute."""

import asyncio
import json
import logging
import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select

from safevine.failures import describe
from safevine.ingest.events import ingest_events
from safevine.store.public.tables import registrations
from safevine.store.public.views import public_persons
from safevine.store.schema import custody_status, facilities, persons

log = logging.getLogger("safevine.demo")

KINDS = ["transferred", "transferred", "hearing_scheduled", "released"]
HEARING_AFTER_DAYS = 14


def _pick(engine: Engine, rng: random.Random, silent: int | None) -> tuple[str, str] | None:
    """(A-number, kind) for the next event, or None while there is nobody public. No one
    held at the `silent` facility is moved: its feed has stopped."""
    elsewhere = persons.c.id.not_in(
        select(custody_status.c.person_id).where(custody_status.c.facility_id == silent)
    )
    with engine.connect() as connection:
        registered = (
            connection.execute(
                select(persons.c.a_number)
                .join(registrations, registrations.c.person_ref == persons.c.public_ref)
                .join(public_persons, public_persons.c.public_ref == persons.c.public_ref)
                .where(
                    registrations.c.state == "active",
                    public_persons.c.custody_state == "in_custody",
                    elsewhere,
                )
            )
            .scalars()
            .all()
        )
        if registered:
            return rng.choice(registered), rng.choice(KINDS[:3])
        candidates = (
            connection.execute(
                select(public_persons.c.a_number)
                .join(persons, persons.c.public_ref == public_persons.c.public_ref)
                .where(public_persons.c.custody_state == "in_custody", elsewhere)
                .limit(200)
            )
            .scalars()
            .all()
        )
    return (rng.choice(candidates), rng.choice(KINDS)) if candidates else None


def emit(engine: Engine, rng: random.Random, silent: int | None = None) -> str | None:
    """Feed one event, never at the `silent` facility; returns its kind."""
    choice = _pick(engine, rng, silent)
    if choice is None:
        return None
    a_number, kind = choice
    with engine.connect() as connection:
        places = connection.execute(
            select(facilities.c.code, facilities.c.time_zone)
            .where(facilities.c.code.like("ICE-%"), facilities.c.id != (silent or 0))
            .order_by(facilities.c.code)
            .limit(50)
        ).all()
    code, zone = rng.choice(places)
    now = datetime.now(UTC).replace(microsecond=0)
    record: dict[str, object] = {
        "event_id": f"sim-{a_number}-{now.timestamp():.0f}-{kind}",
        "kind": kind,
        "occurred_at": now.isoformat(),
        "facility_code": code,
        "person": {"a_number": a_number},
    }
    if kind == "released":
        record["details"] = {"reason": rng.choice(["bond", "parole", "supervision"])}
    if kind == "hearing_scheduled":
        record["details"] = {"court": "Immigration Court", "hearing_at": _hearing_at(now, zone)}
    ingest_events(engine, [json.dumps(record).encode()], source="demo-simulator", fmt="jsonl")
    return kind


def _hearing_at(now: datetime, zone: str | None) -> str:
    """A hearing as a court sets one: two weeks on, at nine in the morning where the
    facility is (the messages show it in the facility's time), not in the small hours."""
    local = (now + timedelta(days=HEARING_AFTER_DAYS)).astimezone(ZoneInfo(zone or "UTC"))
    return local.replace(hour=9, minute=0, second=0).isoformat()


async def simulate(
    engine: Engine, stop: asyncio.Event, every_seconds: float = 20.0, silent: int | None = None
) -> None:
    rng = random.Random()
    while not stop.is_set():
        try:
            await asyncio.to_thread(emit, engine, rng, silent)
        except Exception as error:
            # One event that cannot be fed (the database busy past its timeout on a loaded
            # machine, say) must not end the feed: a newcomer waits for the next one. The
            # demo's console shows a warning's message alone, so the kind of failure (no
            # value of the event) goes in it.
            found = describe(error)
            log.warning(
                "demo feed: an event could not be fed (%s); the next one follows",
                found["error"],
                extra=found,
            )
        try:
            await asyncio.wait_for(stop.wait(), timeout=every_seconds)
        except TimeoutError:
            continue

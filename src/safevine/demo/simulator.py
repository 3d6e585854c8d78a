"""The demo's custody feed: every few seconds a custody event for a public demo person,
through the real ingest path, favouring people someone has registered for, so a newcomer
who registers sees a real notification arrive within a minute."""

import asyncio
import json
import random
from datetime import UTC, datetime

from sqlalchemy import Engine, select

from safevine.ingest.events import ingest_events
from safevine.store.public.tables import registrations
from safevine.store.public.views import public_persons
from safevine.store.schema import facilities, persons

KINDS = ["transferred", "transferred", "hearing_scheduled", "released"]


def _pick(engine: Engine, rng: random.Random) -> tuple[str, str] | None:
    """(A-number, kind) for the next event, or None while there is nobody public."""
    with engine.connect() as connection:
        registered = (
            connection.execute(
                select(persons.c.a_number)
                .join(registrations, registrations.c.person_ref == persons.c.public_ref)
                .join(public_persons, public_persons.c.public_ref == persons.c.public_ref)
                .where(
                    registrations.c.state == "active",
                    public_persons.c.custody_state == "in_custody",
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
                .where(public_persons.c.custody_state == "in_custody")
                .limit(200)
            )
            .scalars()
            .all()
        )
    return (rng.choice(candidates), rng.choice(KINDS)) if candidates else None


def emit(engine: Engine, rng: random.Random) -> str | None:
    """Feed one event; returns its kind."""
    choice = _pick(engine, rng)
    if choice is None:
        return None
    a_number, kind = choice
    with engine.connect() as connection:
        codes = (
            connection.execute(
                select(facilities.c.code).where(facilities.c.code.like("ICE-%")).limit(50)
            )
            .scalars()
            .all()
        )
    now = datetime.now(UTC).replace(microsecond=0)
    record: dict[str, object] = {
        "event_id": f"sim-{a_number}-{now.timestamp():.0f}-{kind}",
        "kind": kind,
        "occurred_at": now.isoformat(),
        "facility_code": rng.choice(codes),
        "person": {"a_number": a_number},
    }
    if kind == "released":
        record["details"] = {"reason": rng.choice(["bond", "parole", "supervision"])}
    if kind == "hearing_scheduled":
        record["details"] = {
            "court": "Immigration Court",
            "hearing_at": now.replace(hour=9, minute=0).isoformat(),
        }
    ingest_events(engine, [json.dumps(record).encode()], source="demo-simulator", fmt="jsonl")
    return kind


async def simulate(engine: Engine, stop: asyncio.Event, every_seconds: float = 20.0) -> None:
    rng = random.Random()
    while not stop.is_set():
        await asyncio.to_thread(emit, engine, rng)
        try:
            await asyncio.wait_for(stop.wait(), timeout=every_seconds)
        except TimeoutError:
            continue

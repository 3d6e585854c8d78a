"""One batch held for review in the demo, so the console has one to show: a replayed
file, release events dated long before what its facility last sent. The events change no
one's status (a person's newest event decides it); their notifications wait for staff."""

import json
from datetime import timedelta

from sqlalchemy import Engine, func, select

from safevine.ingest.events import ingest_events
from safevine.store.decoy import real_persons
from safevine.store.schema import (
    batch_holds,
    custody_events,
    custody_status,
    facilities,
    persons,
)

SOURCE = "demo-replayed-file.jsonl"


def hold_one(engine: Engine) -> int | None:
    """The hold's id; None when one is already open (a re-run) or nobody is held."""
    with engine.connect() as connection:
        if connection.execute(
            select(func.count()).select_from(batch_holds).where(batch_holds.c.state == "held")
        ).scalar_one():
            return None
        busiest = connection.execute(
            select(facilities.c.code, custody_status.c.facility_id)
            .join(facilities, facilities.c.id == custody_status.c.facility_id)
            .where(custody_status.c.state == "in_custody")
            .group_by(facilities.c.code, custody_status.c.facility_id)
            .order_by(func.count().desc(), facilities.c.code)
            .limit(1)
        ).first()
        if busiest is None:
            return None
        newest = connection.execute(
            select(func.max(custody_events.c.occurred_at)).where(
                custody_events.c.facility_id == busiest.facility_id
            )
        ).scalar_one()
        held = connection.execute(
            select(persons)
            .join(custody_status, custody_status.c.person_id == persons.c.id)
            .where(
                custody_status.c.facility_id == busiest.facility_id,
                custody_status.c.state == "in_custody",
                persons.c.protection == "cleared",
                real_persons(),
            )
            .order_by(persons.c.id)
            .limit(3)
        ).all()
    long_ago = newest - timedelta(days=60)
    lines = [
        json.dumps(
            {
                "event_id": f"demo-replay-{p.a_number}",
                "kind": "released",
                "occurred_at": long_ago.isoformat(),
                "facility_code": busiest.code,
                "details": {"reason": "bond"},
                "person": {
                    "a_number": p.a_number,
                    "given_name": p.given_name,
                    "family_name": p.family_name,
                    "date_of_birth": p.date_of_birth.isoformat() if p.date_of_birth else None,
                    "country_of_birth": p.country_of_birth,
                },
            }
        ).encode()
        + b"\n"
        for p in held
    ]
    summary = ingest_events(engine, lines, source=SOURCE, fmt="jsonl", actor="demo")
    return summary.hold_id

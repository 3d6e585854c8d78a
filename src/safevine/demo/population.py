"""A synthetic population for the demo, fed through the real ingest path.

Deterministic for a seed and a day. Names come from Faker's Spanish (Mexico) and English
locales; countries follow the rough mix of people held in immigration detention.
"""

import csv
import io
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from importlib.resources import files
from pathlib import Path

from faker import Faker
from sqlalchemy import Engine, select

from safevine.domain.a_number import format_a_number
from safevine.ingest.events import ingest_events
from safevine.ingest.facilities import ingest_facilities
from safevine.ingest.protections import ingest_protections
from safevine.ingest.source import file_lines
from safevine.store.public.views import public_persons
from safevine.store.schema import custody_status, facilities, persons

FACILITY_LIST = Path(str(files("safevine.demo") / "data" / "ice-facilities-fy2007.csv"))

# (country, weight, Faker locale for names)
_COUNTRIES = [
    ("MX", 30, "es_MX"),
    ("GT", 15, "es_MX"),
    ("HN", 12, "es_MX"),
    ("SV", 8, "es_MX"),
    ("VE", 5, "es_MX"),
    ("CU", 4, "es_MX"),
    ("CO", 4, "es_MX"),
    ("EC", 4, "es_MX"),
    ("NI", 3, "es_MX"),
    ("DO", 2, "es_MX"),
    ("HT", 3, "fr_FR"),
    ("BR", 2, "pt_BR"),
    ("IN", 4, "en_IN"),
    ("RO", 1, "ro_RO"),
    ("NG", 1, "en_US"),
    ("PH", 2, "en_PH"),
]


@dataclass(frozen=True)
class DemoPerson:
    a_number: str
    given_name: str
    family_name: str
    date_of_birth: date
    country: str
    protection: str  # cleared, protected or unscreened


def people(count: int, seed: int, today: date) -> list[DemoPerson]:
    rng = random.Random(seed)
    fakers = {loc: Faker(loc) for _, _, loc in _COUNTRIES}
    for index, faker in enumerate(fakers.values()):
        faker.seed_instance(seed + index)
    result = []
    used: set[str] = set()
    for _ in range(count):
        country, _, locale = rng.choices(_COUNTRIES, weights=[w for _, w, _ in _COUNTRIES])[0]
        faker = fakers[locale]
        a_number = f"2{rng.randrange(10**8):08d}"
        while a_number in used:
            a_number = f"2{rng.randrange(10**8):08d}"
        used.add(a_number)
        minor = rng.random() < 0.03
        age_days = (
            rng.randrange(15 * 365, 18 * 365 - 30)
            if minor
            else rng.randrange(18 * 365 + 30, 70 * 365)
        )
        roll = rng.random()
        protection = "protected" if roll < 0.08 else "unscreened" if roll < 0.16 else "cleared"
        result.append(
            DemoPerson(
                a_number,
                faker.first_name(),
                faker.last_name(),
                today - timedelta(days=age_days),
                country,
                protection,
            )
        )
    return result


def _events(
    population: list[DemoPerson], codes: list[str], weights: list[int], seed: int, now: datetime
) -> Iterator[dict[str, object]]:
    rng = random.Random(seed)
    for person in population:
        block = {
            "a_number": person.a_number,
            "given_name": person.given_name,
            "family_name": person.family_name,
            "date_of_birth": person.date_of_birth.isoformat(),
            "country_of_birth": person.country,
        }
        booked = now - timedelta(days=rng.randrange(5, 200), minutes=rng.randrange(1440))
        facility = rng.choices(codes, weights=weights)[0]
        yield _event(person, "booked", booked, facility, block)
        at = booked
        if rng.random() < 0.3:
            at = at + timedelta(days=rng.randrange(1, 4))
            facility = rng.choices(codes, weights=weights)[0]
            if at < now:
                yield _event(person, "transferred", at, facility, block)
        roll = rng.random()
        leave = at + timedelta(days=rng.randrange(1, 120))
        if leave < now and roll < 0.25:
            reason = rng.choice(["bond", "parole", "supervision", "recognizance"])
            yield _event(person, "released", leave, facility, block, {"reason": reason})
        elif leave < now and roll < 0.35:
            yield _event(
                person, "removed", leave, facility, block, {"destination_country": person.country}
            )
        elif roll < 0.5:
            hearing = now + timedelta(days=rng.randrange(3, 60))
            yield _event(
                person,
                "hearing_scheduled",
                at + timedelta(hours=2),
                facility,
                block,
                {
                    "court": "Immigration Court",
                    "hearing_at": hearing.replace(
                        hour=9, minute=0, second=0, microsecond=0
                    ).isoformat(),
                },
            )


def _event(
    person: DemoPerson,
    kind: str,
    at: datetime,
    facility: str,
    block: dict[str, str],
    details: dict[str, str] | None = None,
) -> dict[str, object]:
    return {
        "event_id": f"demo-{person.a_number}-{kind}",
        "kind": kind,
        "occurred_at": at.isoformat(timespec="seconds"),
        "facility_code": facility,
        "person": block,
        "details": details or {},
    }


def examples(
    engine: Engine, count: int = 5, facility_id: int | None = None
) -> list[tuple[str, str, str]]:
    """(A-number, name, country) of a few public people in custody (at `facility_id`, if
    given), for a newcomer to search for."""
    query = (
        select(
            public_persons.c.a_number,
            public_persons.c.given_name,
            public_persons.c.family_name,
            public_persons.c.country_of_birth,
        )
        .where(public_persons.c.custody_state == "in_custody")
        .order_by(public_persons.c.a_number)
        .limit(count)
    )
    if facility_id is not None:
        query = (
            query.join(persons, persons.c.public_ref == public_persons.c.public_ref)
            .join(custody_status, custody_status.c.person_id == persons.c.id)
            .where(custody_status.c.facility_id == facility_id)
        )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return [
        (format_a_number(r.a_number), f"{r.given_name} {r.family_name}", r.country_of_birth)
        for r in rows
    ]


@dataclass(frozen=True)
class DemoLoad:
    population: list[DemoPerson]
    events: int


def load_demo(engine: Engine, count: int = 400, seed: int = 2017) -> DemoLoad:
    """Load the real facility list and `count` synthetic people; a re-run changes nothing."""
    ingest_facilities(engine, file_lines(FACILITY_LIST), source=FACILITY_LIST.name)
    with engine.connect() as connection:
        rows = connection.execute(
            select(facilities.c.code, facilities.c.average_population)
            .where(facilities.c.code.like("ICE-%"))
            .order_by(facilities.c.code)
        ).all()
    codes = [r.code for r in rows]
    weights = [max(1, r.average_population or 1) for r in rows]
    now = datetime.now(UTC).replace(microsecond=0)
    population = people(count, seed, now.date())
    lines = [json.dumps(e).encode() + b"\n" for e in _events(population, codes, weights, seed, now)]
    ingest_events(engine, lines, source="demo-events.jsonl", fmt="jsonl")
    listing = io.StringIO()
    writer = csv.writer(listing)
    writer.writerow(["a_number", "status", "as_of", "source"])
    for person in population:
        if person.protection != "unscreened":
            writer.writerow(
                [person.a_number, person.protection, now.date().isoformat(), "demo screening"]
            )
    ingest_protections(
        engine,
        [line.encode() for line in listing.getvalue().splitlines(keepends=True)],
        source="demo-protections.csv",
    )
    return DemoLoad(population, len(lines))

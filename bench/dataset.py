"""Deterministic benchmark data: facilities, people, event feeds, rosters, registrations.

The facility base is ICE's real list (`../shared/data/ice-facilities-fy2007.csv`), loaded
through the real ingest path and scaled up with synthetic facilities where a benchmark
needs more. Everything else comes from one seeded generator, so every run and every
database sees the same rows. Bulk loaders write populations straight into the tables,
because what they set up is the starting point of a benchmark, not what it measures.
"""

import json
import random
import secrets
from collections.abc import Iterator, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, insert, select, text

from bench.harness import ROOT, iter_chunks
from safevine.contact_vault import ContactVault
from safevine.domain.event_kinds import EventKind
from safevine.domain.names import PersonName
from safevine.ingest.facilities import ingest_facilities
from safevine.store.public.registrations import token_hash
from safevine.store.public.tables import registrations
from safevine.store.schema import (
    custody_events,
    custody_status,
    facilities,
    person_names,
    persons,
)

ICE_FACILITIES = ROOT.parent / "shared" / "data" / "ice-facilities-fy2007.csv"
# The copy shipped with the demo, for a checkout without the shared folder beside it.
ICE_FALLBACK = ROOT / "src" / "safevine" / "demo" / "data" / "ice-facilities-fy2007.csv"
START = datetime(2026, 6, 1, tzinfo=UTC)

GIVEN = [
    "José",
    "María",
    "Juan",
    "Ana",
    "Luis",
    "Carmen",
    "Carlos",
    "Rosa",
    "Jorge",
    "Elena",
    "Miguel",
    "Sofía",
    "Pedro",
    "Lucía",
    "Francisco",
    "Isabel",
    "Manuel",
    "Marta",
    "Antonio",
    "Laura",
    "Wei",
    "Mei",
    "Li",
    "Jing",
    "Raj",
    "Priya",
    "Arjun",
    "Anita",
    "Mohamed",
    "Fatima",
    "Ahmed",
    "Amina",
    "Olga",
    "Ivan",
    "Nadia",
    "Dmitri",
    "Kwame",
    "Ama",
    "Kofi",
    "Esi",
    "Jean",
    "Marie",
    "Pierre",
    "Claire",
    "Andrés",
    "Valentina",
    "Diego",
    "Camila",
    "Mateo",
    "Daniela",
    "Santiago",
    "Gabriela",
    "Alejandro",
    "Mariana",
    "Fernando",
    "Paola",
    "Ricardo",
    "Adriana",
    "Héctor",
    "Silvia",
    "Raúl",
    "Patricia",
    "Óscar",
    "Verónica",
    "Tomás",
    "Lorena",
    "Emilio",
    "Beatriz",
    "Rubén",
    "Alicia",
    "Ángel",
    "Noemí",
    "Ismael",
    "Yolanda",
    "Efraín",
    "Leticia",
]
FAMILY = [
    "López",
    "García",
    "Hernández",
    "Martínez",
    "González",
    "Rodríguez",
    "Pérez",
    "Sánchez",
    "Ramírez",
    "Cruz",
    "Flores",
    "Gómez",
    "Morales",
    "Vázquez",
    "Reyes",
    "Jiménez",
    "Torres",
    "Díaz",
    "Gutiérrez",
    "Ruiz",
    "Mendoza",
    "Aguilar",
    "Ortiz",
    "Moreno",
    "Castillo",
    "Romero",
    "Álvarez",
    "Méndez",
    "Chávez",
    "Rivera",
    "Juárez",
    "Ramos",
    "Domínguez",
    "Herrera",
    "Medina",
    "Castro",
    "Vargas",
    "Guzmán",
    "Velázquez",
    "Muñoz",
    "Rojas",
    "Contreras",
    "Salazar",
    "Luna",
    "Ortega",
    "Santiago",
    "Guerrero",
    "Estrada",
    "Bautista",
    "Cortés",
    "Soto",
    "Alvarado",
    "Espinoza",
    "Lara",
    "Ávila",
    "Ríos",
    "Cervantes",
    "Silva",
    "Delgado",
    "Vega",
    "Márquez",
    "Sandoval",
    "Fernández",
    "León",
    "Carrillo",
    "Mejía",
    "Solís",
    "Núñez",
    "Rosas",
    "Valdez",
    "Ibarra",
    "Campos",
    "Maldonado",
    "Navarro",
    "Acosta",
    "Zhang",
    "Wang",
    "Chen",
    "Liu",
    "Singh",
    "Kumar",
    "Patel",
    "Sharma",
    "Haddad",
    "Hassan",
    "Ali",
    "Ivanova",
    "Petrov",
    "Mensah",
    "Owusu",
    "Boateng",
    "Diallo",
    "Traoré",
    "Joseph",
    "Baptiste",
    "Pierre",
    "Charles",
    "Francois",
    "Mora",
    "Paredes",
    "Benítez",
    "Quintero",
    "Arias",
    "Villalobos",
    "Figueroa",
    "Fuentes",
    "Miranda",
    "Calderón",
    "Salinas",
    "Cabrera",
    "Peña",
    "Trejo",
    "Galván",
    "Zamora",
]
COUNTRIES = (
    ("MX", 40), ("GT", 15), ("HN", 12), ("SV", 8), ("IN", 4), ("CN", 3), ("EC", 3),
    ("CO", 3), ("VE", 3), ("NI", 2), ("HT", 2), ("CU", 2), ("BR", 1), ("DO", 1), ("RU", 1),
)  # fmt: skip
RELEASE_REASONS = ("bond", "parole", "supervision", "recognizance", "case_terminated")


@dataclass(frozen=True)
class Person:
    a_number: str
    given: str
    family: str
    date_of_birth: date
    country: str

    def facts(self) -> dict[str, str]:
        return {
            "a_number": self.a_number,
            "given_name": self.given,
            "family_name": self.family,
            "date_of_birth": self.date_of_birth.isoformat(),
            "country_of_birth": self.country,
        }


def people(count: int, seed: int, offset: int = 0) -> list[Person]:
    """`count` people; person i is the same in every run (A-numbers 2xxxxxxxx)."""
    rng = random.Random(seed * 1_000_003 + offset)
    codes = [c for c, _ in COUNTRIES]
    weights = [w for _, w in COUNTRIES]
    out = []
    for i in range(offset, offset + count):
        family = f"{rng.choice(FAMILY)} {rng.choice(FAMILY)}"
        born = date(1950, 1, 1) + timedelta(days=rng.randrange(55 * 365))
        out.append(
            Person(
                f"{200_000_000 + i:09d}",
                rng.choice(GIVEN),
                family,
                born,
                rng.choices(codes, weights)[0],
            )
        )
    return out


def load_facilities(engine: Engine, count: int) -> list[str]:
    """ICE's real facilities through the real ingest path, then synthetic ones up to
    `count`; returns the first `count` codes, real ones first."""
    source = ICE_FACILITIES if ICE_FACILITIES.exists() else ICE_FALLBACK
    with source.open("rb") as handle:
        ingest_facilities(engine, handle, source=source.name)
    with engine.connect() as connection:
        codes = list(
            connection.execute(select(facilities.c.code).order_by(facilities.c.id)).scalars()
        )
    missing = count - len(codes)
    if missing > 0:
        rng = random.Random(len(codes))
        cities = (("Eloy", "AZ"), ("Houston", "TX"), ("Miami", "FL"), ("Tacoma", "WA"),
                  ("Newark", "NJ"), ("Atlanta", "GA"), ("Denver", "CO"))  # fmt: skip
        lines = [b"code,name,city,state\n"]
        for n in range(missing):
            city, state = rng.choice(cities)
            lines.append(f"SYN-{n:05d},Synthetic County Jail {n},{city},{state}\n".encode())
        ingest_facilities(engine, lines, source="synthetic-facilities.csv")
        with engine.connect() as connection:
            codes = list(
                connection.execute(select(facilities.c.code).order_by(facilities.c.id)).scalars()
            )
    return codes[:count]


def home_facility(index: int, codes: Sequence[str]) -> str:
    """Where `load_population` books person `index`, known to the feed generators too."""
    return codes[(index * 2_654_435_761) % len(codes)]


def protection_of(index: int, protected_share: float, unscreened_share: float) -> str:
    """Spread protected and unscreened people evenly through the index range."""
    bucket = (index * 7919) % 1000 / 1000
    if bucket < protected_share:
        return "protected"
    if bucket < protected_share + unscreened_share:
        return "unscreened"
    return "cleared"


def load_population(
    engine: Engine,
    population: Sequence[Person],
    codes: Sequence[str],
    *,
    protected_share: float = 0.05,
    unscreened_share: float = 0.05,
    seed: int,
    chunk: int = 20_000,
    released: AbstractSet[int] = frozenset(),
) -> None:
    """Everyone in `population` booked into a facility, with names and a custody status.
    The people whose index is in `released` then left custody, 1 to 60 days after their
    booking (so before START + 60 days): a release event, and a released status.

    Written straight into the tables, as a long-running system would hold them; the
    benchmarks measure what happens after this point.
    """
    rng = random.Random(seed + 17)
    # Its own generator: bookings stay the same whoever is released.
    release_rng = random.Random(seed + 19)
    with engine.connect() as connection:
        facility_id = {
            code: int(i)
            for code, i in connection.execute(select(facilities.c.code, facilities.c.id))
        }
        start_id = (connection.execute(select(persons.c.id).order_by(persons.c.id.desc())).scalar()
                    or 0) + 1  # fmt: skip
        start_event = (
            connection.execute(
                select(custody_events.c.id).order_by(custody_events.c.id.desc())
            ).scalar()
            or 0
        ) + 1
    now = datetime.now(UTC)
    # Release events take the ids after every booking's.
    next_release = start_event + len(population)
    for begin in range(0, len(population), chunk):
        part = population[begin : begin + chunk]
        person_rows: list[dict[str, object]] = []
        name_rows: list[dict[str, object]] = []
        event_rows: list[dict[str, object]] = []
        status_rows: list[dict[str, object]] = []
        for offset, p in enumerate(part):
            index = begin + offset
            pid, epk = start_id + index, start_event + index
            protection = protection_of(index, protected_share, unscreened_share)
            booked = START - timedelta(minutes=rng.randrange(60 * 24 * 300))
            facility = facility_id[home_facility(index, codes)]
            person_rows.append(
                {
                    "id": pid,
                    "a_number": p.a_number,
                    "public_ref": secrets.token_urlsafe(16),
                    "given_name": p.given,
                    "family_name": p.family,
                    "date_of_birth": p.date_of_birth,
                    "country_of_birth": p.country,
                    "protection": protection,
                    "screened_at": None if protection == "unscreened" else booked,
                    "created_at": booked,
                    "updated_at": booked,
                }
            )
            given_key, family_key = PersonName(p.given, p.family).key
            name_rows.append(
                {
                    "person_id": pid,
                    "given_name": p.given,
                    "family_name": p.family,
                    "given_key": given_key,
                    "family_key": family_key,
                    "is_primary": 1,
                }
            )
            event_id = f"seed-{p.a_number}"
            event_rows.append(
                {
                    "id": epk,
                    "event_id": event_id,
                    "person_id": pid,
                    "kind": "booked",
                    "facility_id": facility,
                    "occurred_at": booked,
                    "sequence": 0,
                    "received_at": booked,
                    "details": {},
                    "content_hash": "0" * 64,
                    "origin": "feed",
                    "batch_id": None,
                }
            )
            status: dict[str, object] = {
                "person_id": pid,
                "state": "in_custody",
                "facility_id": facility,
                "event_pk": epk,
                "event_id": event_id,
                "occurred_at": booked,
                "sequence": 0,
                "left_custody_at": None,
                "updated_at": now,
            }
            if index in released:
                left = booked + timedelta(minutes=release_rng.randrange(60 * 24, 60 * 24 * 60))
                release = _release_event(
                    event_rows[-1], next_release, f"seed-rel-{p.a_number}", left, release_rng
                )
                event_rows.append(release)
                status.update(
                    state="released",
                    event_pk=next_release,
                    event_id=release["event_id"],
                    occurred_at=left,
                    left_custody_at=left,
                )
                next_release += 1
            status_rows.append(status)
        with engine.begin() as connection:
            connection.execute(insert(persons), person_rows)
            connection.execute(insert(person_names), name_rows)
            connection.execute(insert(custody_events), event_rows)
            connection.execute(insert(custody_status), status_rows)
    _fix_sequences(engine)


def _release_event(
    booking: dict[str, object], pk: int, event_id: str, left: datetime, rng: random.Random
) -> dict[str, object]:
    """The release that ends `booking`'s stay, from the same facility."""
    return {
        **booking,
        "id": pk,
        "event_id": event_id,
        "kind": "released",
        "occurred_at": left,
        "received_at": left,
        "details": {"reason": rng.choice(RELEASE_REASONS)},
    }


def settle(engine: Engine) -> None:
    """Bring a bulk-loaded PostgreSQL database to the state a long-running one is in
    (untimed): autovacuum would have set hint bits and visibility and gathered planner
    statistics. Without them every table looks empty to the planner, which then scans
    whole tables (person_names for every batch of events, for one), and the first timed
    run pays for setting hint bits on every freshly loaded page. SQLite keeps no
    statistics unless asked."""
    if engine.dialect.name != "postgresql":
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))


def _fix_sequences(engine: Engine) -> None:
    """Explicit ids leave PostgreSQL's sequences behind; move them past the rows."""
    if engine.dialect.name != "postgresql":
        return
    from sqlalchemy import text

    with engine.begin() as connection:
        for table in ("persons", "custody_events", "person_names"):
            connection.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"
                )
            )


def public_refs(engine: Engine, protection: str = "cleared") -> list[str]:
    with engine.connect() as connection:
        return list(
            connection.execute(
                select(persons.c.public_ref)
                .where(persons.c.protection == protection)
                .order_by(persons.c.id)
            ).scalars()
        )


def load_registrations(
    engine: Engine,
    vault: ContactVault,
    refs: Sequence[str],
    count: int,
    seed: int,
    channel: str = "email",
) -> None:
    """`count` active registrations on people drawn from `refs` (some on the same person,
    as family and advocates share one), wanting every kind of event: by email, or by text
    message (`channel="sms"`, fictional +1 555 numbers)."""
    rng = random.Random(seed + 29)
    now = datetime.now(UTC)
    kinds = [k.value for k in EventKind]
    rows = []
    for n in range(count):
        if channel == "sms":
            address, hint = f"+1555{n:07d}", f"***-***-{n % 10_000:04d}"
        else:
            address, hint = f"registrant{n}@bench.example", f"r•••{n % 10}@bench.example"
        key_id, ciphertext = vault.encrypt(address, "address")
        manage = secrets.token_urlsafe(16)
        manage_key, manage_ciphertext = vault.encrypt(manage, "manage")
        rows.append(
            {
                "person_ref": refs[rng.randrange(len(refs))],
                "number": 100_000 + n,
                "channel": channel,
                "address_key_id": key_id,
                "address_ciphertext": ciphertext,
                "address_index": vault.blind_index(channel, address),
                "address_hint": hint,
                "language": "es" if n % 4 == 0 else "en",
                "wording": "discreet" if n % 5 == 0 else "standard",
                "events": kinds,
                "state": "active",
                "pending_token_hash": token_hash(secrets.token_urlsafe(24)),
                "manage_token_hash": token_hash(manage),
                "manage_token_key_id": manage_key,
                "manage_token_ciphertext": manage_ciphertext,
                "created_at": now,
                "confirmed_at": now,
                "updated_at": now,
            }
        )
    for part in iter_chunks(rows, 10_000):
        with engine.begin() as connection:
            connection.execute(insert(registrations), part)


@dataclass(frozen=True)
class EventFeed:
    lines: list[bytes]
    duplicates: int
    out_of_order: int
    malformed: int


def event_feed(
    count: int,
    known: Sequence[Person],
    newcomers: Sequence[Person],
    codes: Sequence[str],
    seed: int,
    *,
    duplicate_share: float = 0.01,
    late_share: float = 0.01,
    malformed_share: float = 0.005,
) -> EventFeed:
    """A JSON Lines feed of `count` records: custody moves of `known` people (in custody
    when the feed starts) and bookings of `newcomers`, in time order, then with exact
    resends, late arrivals (moved later in the file than events that happened after them)
    and malformed records mixed in at the given shares."""
    rng = random.Random(seed + 41)
    # Where each person is held, or None: feeds name the facility a person leaves too.
    held: list[str | None] = [home_facility(i, codes) for i in range(len(known))]
    everyone = list(known) + list(newcomers)
    held += [None] * len(newcomers)
    fresh = list(range(len(known), len(everyone)))
    rng.shuffle(fresh)
    clean = count - round(count * (duplicate_share + malformed_share))
    records: list[dict[str, object]] = []
    for n in range(clean):
        if fresh and rng.random() < len(newcomers) / max(1, clean) * 1.2:
            who = fresh.pop()
        else:
            who = rng.randrange(len(everyone))
        person = everyone[who]
        when = START + timedelta(seconds=n * 2)
        record: dict[str, object] = {"event_id": f"ev-{n:08d}", "occurred_at": when.isoformat()}
        at = held[who]
        if at is None:
            held[who] = rng.choice(codes)
            record.update(kind="booked", facility_code=held[who])
        else:
            roll = rng.random()
            record["facility_code"] = at
            if roll < 0.40:
                held[who] = rng.choice(codes)
                record.update(
                    kind="transferred", facility_code=held[who], details={"from_facility_code": at}
                )
            elif roll < 0.70:
                hearing = when + timedelta(days=rng.randrange(7, 90))
                record.update(
                    kind="hearing_scheduled",
                    details={"court": "Immigration Court", "hearing_at": hearing.isoformat()},
                )
            elif roll < 0.90:
                record.update(kind="released", details={"reason": rng.choice(RELEASE_REASONS)})
                held[who] = None
            else:
                record.update(kind="removed", details={"destination_country": person.country})
                held[who] = None
        record["person"] = person.facts()
        records.append(record)
    lines = [json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in records]
    late = round(count * late_share)
    for _ in range(late):
        source = rng.randrange(len(lines) - 1)
        moved = lines.pop(source)
        lines.insert(min(len(lines), source + rng.randrange(200, 5000)), moved)
    duplicates = round(count * duplicate_share)
    for _ in range(duplicates):
        copy = lines[rng.randrange(len(lines))]
        lines.insert(rng.randrange(len(lines) + 1), copy)
    malformed = count - len(lines)
    for n in range(malformed):
        lines.insert(rng.randrange(len(lines) + 1), _malformed(n, rng, codes))
    return EventFeed(lines, duplicates, late, malformed)


def _malformed(n: int, rng: random.Random, codes: Sequence[str]) -> bytes:
    """One of the mistakes real feeds make, in turn."""
    base = {
        "event_id": f"bad-{n:07d}",
        "kind": "booked",
        "occurred_at": (START + timedelta(seconds=n)).isoformat(),
        "facility_code": rng.choice(codes),
        "person": {"a_number": f"{300_000_000 + n:09d}"},
    }
    match n % 5:
        case 0:
            return b'{"event_id": "bad-' + str(n).encode() + b'", "kind": "booked",\n'
        case 1:
            base["person"] = {"a_number": "12-34"}
        case 2:
            base["kind"] = "paroled"
        case 3:
            base["occurred_at"] = "2026-06-01T08:00:00"
        case _:
            base["facility_code"] = "NO-SUCH-FACILITY"
    return json.dumps(base).encode() + b"\n"


def roster_lines(taken_at: datetime, placement: Sequence[tuple[Person, str]]) -> Iterator[bytes]:
    """A roster CSV of everyone in `placement` (person, facility code) at `taken_at`."""
    yield (
        b"snapshot_at,facility_code,a_number,given_name,family_name,"
        b"date_of_birth,country_of_birth\n"
    )
    stamp = taken_at.isoformat()
    for p, code in placement:
        yield (
            f"{stamp},{code},{p.a_number},{p.given},{p.family},"
            f"{p.date_of_birth.isoformat()},{p.country}\n"
        ).encode()


def write_lines(path: Path, lines: Iterator[bytes] | list[bytes]) -> Path:
    with path.open("wb") as handle:
        handle.writelines(lines)
    return path

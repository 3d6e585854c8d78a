"""A purge leaves no trace: canary people, a registrant's contact, a rejected feed line,
a roster's rows and a staff sign-in are planted, the clock moves past every period, and
then not one canary string remains in the SQLite file and its write-ahead log, or in any
row of any table on PostgreSQL, while what must stay (a person still held, the counts,
the audit chain) stays."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, func, insert, inspect, select, text

from safevine.actions.actor import Actor
from safevine.actions.purge import purge
from safevine.domain.retention import RetentionPeriods
from safevine.ingest.events import ingest_events
from safevine.ingest.protections import ingest_protections
from safevine.ingest.roster import ingest_roster
from safevine.store.public.connection import make_public_engine
from safevine.store.public.tables import registrations
from safevine.store.records import audit
from safevine.store.records.purge import a_number_key
from safevine.store.schema import persons, purged_persons, roster_entries, staff_login_attempts
from tests.builders import (
    NOW,
    ROSTER_HEADER,
    csv_lines,
    days_ago,
    event,
    jsonl,
    load_facilities,
    person,
)
from tests.canaries import Canary, plant
from tests.notify.conftest import Delivery
from tests.staff.desk import Desk, desk  # noqa: F401
from tests.web.conftest import SECRET, settings_for

GONE = Canary("gone", "300000021", "Teodolinda", "Purgadeira", "GT")
GONE_PROTECTED = Canary("gone_protected", "300000022", "Casimira", "Olvidadiza", "HN")
STAYING = Canary("staying", "300000023", "Remigio", "Quedandose", "SV")
REJECTED_NAME = "Rechazadorina"
REJECTED_A = "300000024"
WATCHER = "gone.watcher.zq@canary.test"
STAFF_CLIENT = "198.51.100.201"
STAFF_NAME = "nobody-zq-staffer"
PERIODS = RetentionPeriods()


def _plant(engine: Engine) -> None:
    plant(engine)
    load_facilities(engine, "F2")
    records = []
    for c in (GONE, GONE_PROTECTED, STAYING):
        who = person(c.a_number, c.given, c.family, born=c.born, country=c.country)
        at = "F2" if c is STAYING else "F1"
        records.append(event(f"book-{c.a_number}", "booked", days_ago(10), who, facility=at))
        if c is not STAYING:
            records.append(event(f"rel-{c.a_number}", "released", days_ago(5), who, reason="bond"))
    # A line the feed got wrong: its raw text names someone.
    records.append(
        f'{{"event_id": "bad-{REJECTED_A}", "kind": "booked", "person": '
        f'{{"a_number": "{REJECTED_A}", "given_name": "{REJECTED_NAME}"}}}}'
    )
    summary = ingest_events(engine, jsonl(*records), source="purge.jsonl", fmt="jsonl")
    assert summary.rejected == 1
    today = NOW.date().isoformat()
    rows = [[GONE.a_number, "cleared", today], [STAYING.a_number, "cleared", today]]
    rows.append([GONE_PROTECTED.a_number, "protected", today])
    ingest_protections(engine, csv_lines(["a_number", "status", "as_of"], *rows), source="s.csv")
    # A roster of the facility holding the person still held: its staged rows name them.
    roster = [
        NOW.isoformat(),
        "F2",
        STAYING.a_number,
        STAYING.given,
        STAYING.family,
        STAYING.born.isoformat(),
        STAYING.country,
    ]
    summary = ingest_roster(engine, csv_lines(ROSTER_HEADER, roster), source="roster.csv")
    with engine.begin() as connection:
        # A run's staged rows are emptied when it ends; a run killed mid-way leaves some.
        connection.execute(
            insert(roster_entries).values(
                batch_id=summary.batch_id,
                line=2,
                a_number=GONE_PROTECTED.a_number,
                given_name=GONE_PROTECTED.given,
                family_name=GONE_PROTECTED.family,
            )
        )
        connection.execute(
            insert(staff_login_attempts).values(
                at=NOW, account_name=STAFF_NAME, client=STAFF_CLIENT, outcome="no_account"
            )
        )


def _register(engine: Engine) -> int:
    settings = settings_for(engine)
    public = make_public_engine(settings.database_url)
    try:
        desk = Delivery(engine, public, settings, None, None)  # type: ignore[arg-type]
        desk.register(desk.ref(GONE.a_number), WATCHER)
    finally:
        public.dispose()
    with engine.connect() as connection:
        return int(connection.execute(select(func.max(registrations.c.id))).scalar_one())


def _run(engine: Engine, now: datetime, dry_run: bool = False) -> dict[str, int]:
    return purge(
        engine,
        periods=PERIODS,
        public_days=60,
        secret=SECRET,
        now=now,
        actor=Actor("cli:test"),
        dry_run=dry_run,
    ).counts


def _gone_strings() -> list[str]:
    found = [*GONE.identifiers, *GONE_PROTECTED.identifiers, REJECTED_NAME, REJECTED_A]
    return [*found, WATCHER, WATCHER.split("@")[0], STAFF_CLIENT, STAFF_NAME]


def _sqlite_bytes(engine: Engine) -> bytes:
    database = Path(str(engine.url.database))
    wal = database.with_name(database.name + "-wal")
    return database.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def _every_row(engine: Engine) -> str:
    """Every row of every table, as the database's owner reads them."""
    with engine.connect() as connection:
        tables = inspect(connection).get_table_names()
        return "\n".join(
            repr(connection.execute(text(f'SELECT * FROM "{table}"')).all()) for table in tables
        )


def _held(engine: Engine) -> str:
    if engine.dialect.name == "sqlite":
        return _sqlite_bytes(engine).decode("utf-8", "replace")
    return _every_row(engine)


def test_a_purge_leaves_no_trace_of_anyone_past_their_period(engine: Engine) -> None:
    _plant(engine)
    registration = _register(engine)
    held = _held(engine)
    # The scan sees what is stored in the clear (a contact is stored encrypted).
    for planted in (GONE.a_number, GONE.family, GONE_PROTECTED.given, REJECTED_NAME, STAFF_NAME):
        assert planted in held, planted

    # Past every period: 60 days public after release, 30 more for the person.
    later = datetime.now(UTC) + timedelta(days=100)
    would = _run(engine, later, dry_run=True)
    assert would["persons"] == 2 + 1  # the two released canaries and the aged-out one
    assert would["rejected_records"] == 1 and would["staff_sign_ins"] == 1
    assert would["roster_rows"] == 1
    assert _run(engine, later, dry_run=True) == would  # a dry run changes nothing

    first = _run(engine, later)
    assert first["persons"] == would["persons"]
    with engine.connect() as connection:
        ended = connection.execute(
            select(registrations.c.state, registrations.c.end_reason).where(
                registrations.c.id == registration
            )
        ).one()
    # The registration for a purged person ended first, with the one generic status.
    assert tuple(ended) == ("ended", "record_unavailable")

    # Its contact goes once its own period has passed too.
    second = _run(engine, later + timedelta(days=PERIODS.contact_days + 1))
    assert second["contacts"] >= 1 and second["persons"] == 0

    held = _held(engine)
    for planted in _gone_strings():
        assert planted not in held, planted
    # What must stay, stays: a person still held is whole (and the scan would see them).
    assert STAYING.family in held and STAYING.given in held
    with engine.connect() as connection:
        assert (
            connection.execute(
                select(persons.c.family_name).where(persons.c.a_number == STAYING.a_number)
            ).scalar_one()
            == STAYING.family
        )
        keys = set(connection.execute(select(purged_persons.c.a_number_key)).scalars())
        assert a_number_key(SECRET, GONE.a_number) in keys
        assert a_number_key(SECRET, GONE_PROTECTED.a_number) in keys
        # The audit chain still verifies, and each run left one entry with its counts.
        assert audit.verify(connection).ok
        runs = [e for e in audit.entries(connection) if e.action == "purge"]
    assert len(runs) == 2 and f"persons {first['persons']}" in str(runs[0].reason)
    # A third run finds nothing left to do.
    assert set(_run(engine, later + timedelta(days=9)).values()) == {0}


def test_periods_are_read_from_the_environment(monkeypatch: object) -> None:
    import pytest

    from safevine.config import ConfigError, Settings

    mp: pytest.MonkeyPatch = monkeypatch  # type: ignore[assignment]
    mp.setenv("SAFEVINE_KEEP_CONTACT_DAYS", "3")
    mp.setenv("SAFEVINE_KEEP_PERSON_DAYS", "45")
    settings = Settings.from_env()
    assert settings.retention == replace(RetentionPeriods(), contact_days=3, person_days=45)
    mp.setenv("SAFEVINE_KEEP_FEED_DAYS", "0")
    with pytest.raises(ConfigError, match="SAFEVINE_KEEP_FEED_DAYS must be a whole number"):
        Settings.from_env()


def test_the_staff_service_purges_on_its_own_once_a_period(sqlite_engine: Engine) -> None:
    import time

    from safevine.web.server import background_server
    from safevine.web.staff_app import create_staff_app

    def purges() -> list[str]:
        with sqlite_engine.connect() as connection:
            return [e.actor for e in audit.entries(connection) if e.action == "purge"]

    settings = settings_for(sqlite_engine, purge_every_hours=24)
    for _ in range(2):  # a restart within the period does not purge again
        app = create_staff_app(settings)
        with background_server(app, lifespan=True):
            deadline = time.monotonic() + 20
            while not purges() and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(0.5)
        app.state.staff.records_engine.dispose()
    assert purges() == ["system:purge"]


def test_a_person_booked_again_after_a_purge_is_a_new_record_known_as_a_return(
    engine: Engine,
) -> None:
    load_facilities(engine, "F3")
    back = Canary("back", "300000031", "Anselma", "Volvedora", "MX")
    who = person(back.a_number, back.given, back.family, born=back.born, country=back.country)
    old = [
        event("b-1", "booked", days_ago(200), who, facility="F3"),
        event("r-1", "released", days_ago(150), who, facility="F3", reason="bond"),
    ]
    assert ingest_events(engine, jsonl(*old), source="old.jsonl", fmt="jsonl").rejected == 0
    assert _run(engine, datetime.now(UTC))["persons"] == 1
    again = [event("b-2", "booked", days_ago(0), who, facility="F3")]
    assert ingest_events(engine, jsonl(*again), source="new.jsonl", fmt="jsonl").rejected == 0
    with engine.connect() as connection:
        new_id, protection = connection.execute(
            select(persons.c.id, persons.c.protection).where(persons.c.a_number == back.a_number)
        ).one()
    assert protection == "unscreened"  # screened afresh: not public until then
    assert _run(engine, datetime.now(UTC))["returns_recognised"] == 1
    with engine.connect() as connection:
        returned = connection.execute(select(purged_persons.c.returned_as)).scalars().all()
    assert returned == [new_id]
    assert _run(engine, datetime.now(UTC))["returns_recognised"] == 0


def test_staff_see_that_a_person_was_purged(desk: Desk) -> None:  # noqa: F811
    from tests.canaries import AGED_OUT

    with desk.engine.connect() as connection:
        person_id = connection.execute(
            select(persons.c.id).where(persons.c.a_number == AGED_OUT.a_number)
        ).scalar_one()
    assert _run(desk.engine, datetime.now(UTC) + timedelta(days=100))["persons"] == 1
    sam, token = desk.sign_in("sam")
    page = sam.get(f"/person/{person_id}")
    assert page.status_code == 410 and "were purged" in page.text
    assert AGED_OUT.family not in page.text
    refused = sam.post(f"/person/{person_id}/protect", data={"reason": "x", "csrf_token": token})
    assert refused.status_code == 410 and "were purged" in refused.text
    with desk.engine.connect() as connection:
        assert (
            connection.execute(
                select(persons.c.protection).where(persons.c.id == person_id)
            ).scalar_one()
            == "cleared"
        )

"""`safevine purge` as an operator runs it: a real process, on SQLite and PostgreSQL."""

import json

import pytest
from sqlalchemy import Engine, select

from safevine.store.schema import persons
from tests.canaries import AGED_OUT, plant
from tests.cli.test_cli import run


def test_a_dry_run_counts_and_a_run_purges(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    plant(engine)
    database = engine.url.render_as_string(hide_password=False)
    # The aged-out canary left custody 61 days ago: past a 60-day public window and 1 day.
    monkeypatch.setenv("SAFEVINE_KEEP_PERSON_DAYS", "1")

    def family() -> str | None:
        with engine.connect() as connection:
            return connection.execute(
                select(persons.c.family_name).where(persons.c.id == aged_out)
            ).scalar_one()

    with engine.connect() as connection:
        aged_out = connection.execute(
            select(persons.c.id).where(persons.c.a_number == AGED_OUT.a_number)
        ).scalar_one()
    dry = run(database, "purge", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    shown = json.loads(dry.stdout)
    assert shown["dry_run"] is True and shown["counts"]["persons"] == 1
    assert set(shown["counts"]) >= {"contacts", "messages", "rejected_records", "staff_sign_ins"}
    assert family() == AGED_OUT.family  # a dry run changes nothing

    done = run(database, "purge")
    assert done.returncode == 0, done.stderr
    assert "purged 1 persons" in done.stdout
    assert family() is None
    gone = run(database, "person", "show", AGED_OUT.a_number)
    assert gone.returncode == 2 and "no person with A-number" in gone.stderr

    monkeypatch.setenv("SAFEVINE_KEEP_PERSON_DAYS", "forever")
    bad = run(database, "purge", "--dry-run")
    assert bad.returncode == 2 and "SAFEVINE_KEEP_PERSON_DAYS must be a whole number" in bad.stderr

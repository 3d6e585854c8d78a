"""The decoy (migration 0010) is never public and never anyone: no search finds it by any
identifier it holds, nothing that lists people counts it, and no entry point can name it."""

from datetime import date, timedelta

import pytest
from sqlalchemy import Engine, func, select

from safevine.domain.a_number import normalise_a_number
from safevine.domain.errors import FieldError
from safevine.exposure_audit import non_public_probes
from safevine.ingest.roster import ingest_roster
from safevine.store.decoy import DECOY_A_NUMBER, DECOY_NAME_KEYS, DECOY_PERSON_ID
from safevine.store.public import lookup
from safevine.store.public.connection import make_public_engine
from safevine.store.public.prepared_lookup import PreparedLookups
from safevine.store.schema import custody_events, custody_status, person_names, persons
from safevine.web.public.search_query import parse_query
from tests.builders import NOW, ROSTER_HEADER, csv_lines
from tests.canaries import PUBLIC, plant


def _decoy(engine: Engine) -> tuple[str, date, str]:
    with engine.connect() as connection:
        row = connection.execute(
            select(persons.c.public_ref, persons.c.date_of_birth, persons.c.country_of_birth).where(
                persons.c.id == DECOY_PERSON_ID
            )
        ).one()
    return row.public_ref, row.date_of_birth, row.country_of_birth


def test_the_migration_made_the_decoy_this_module_names(engine: Engine) -> None:
    with engine.connect() as connection:
        person = connection.execute(
            select(persons.c.a_number, persons.c.protection).where(persons.c.id == DECOY_PERSON_ID)
        ).one()
        keys = connection.execute(
            select(person_names.c.given_key, person_names.c.family_key)
            .where(person_names.c.person_id == DECOY_PERSON_ID)
            .order_by(person_names.c.family_key)
        ).all()
        status = connection.execute(
            select(custody_status.c.state).where(custody_status.c.person_id == DECOY_PERSON_ID)
        ).scalar_one()
    assert tuple(person) == (DECOY_A_NUMBER, "protected")
    assert [tuple(k) for k in keys] == [(key, key) for key in DECOY_NAME_KEYS]
    assert status == "removed"  # not in custody: no roster sweep ever looks for it


def test_no_search_finds_the_decoy_by_anything_it_holds(engine: Engine) -> None:
    plant(engine)
    ref, born, country = _decoy(engine)
    public = make_public_engine(engine.url.render_as_string(hide_password=False))
    try:
        prepared = PreparedLookups(public)
        with public.connect() as connection:
            for home in (country, PUBLIC.country):
                assert lookup.by_a_number(connection, DECOY_A_NUMBER, home) == []
                assert prepared.by_a_number(DECOY_A_NUMBER, home) == []
                for key in DECOY_NAME_KEYS:
                    for birth in (None, born):
                        assert lookup.by_name(connection, key, key, home, birth) == []
                        assert prepared.by_name(key, key, home, birth) == []
            assert lookup.by_reference(connection, [ref]) == []
            assert lookup.public_count(connection) == 1  # the public canary, and no one else
    finally:
        public.dispose()


def test_no_entry_point_can_name_the_decoy() -> None:
    """Searches, feeds and staff commands all take A-numbers through normalise_a_number
    and names through clean_name."""
    with pytest.raises(FieldError):
        normalise_a_number(DECOY_A_NUMBER)
    assert isinstance(parse_query({"a_number": DECOY_A_NUMBER, "country_of_birth": "MX"}), list)
    for key in DECOY_NAME_KEYS:
        body = {"given_name": key, "family_name": key, "country_of_birth": "MX"}
        assert isinstance(parse_query(body), list)


def test_the_exposure_audit_does_not_take_the_decoy_for_a_person(engine: Engine) -> None:
    plant(engine)
    probes = list(non_public_probes(engine, 60))
    assert probes and DECOY_PERSON_ID not in {p.person_id for p in probes}


def test_a_national_sweep_leaves_the_decoy_alone(engine: Engine) -> None:
    """A sweep of every facility releases whoever it does not list and is in custody;
    the decoy never is, so it is never released, moved or given an event."""
    plant(engine)
    row = [(NOW - timedelta(hours=1)).isoformat(), "F1", PUBLIC.a_number, PUBLIC.given,
           PUBLIC.family, PUBLIC.born.isoformat(), PUBLIC.country]  # fmt: skip
    summary = ingest_roster(engine, csv_lines(ROSTER_HEADER, row), source="all.csv", scope="all")
    assert summary.derived_events > 0  # the other canaries in custody left
    with engine.connect() as connection:
        events = connection.execute(
            select(func.count())
            .select_from(custody_events)
            .where(custody_events.c.person_id == DECOY_PERSON_ID)
        ).scalar_one()
        state = connection.execute(
            select(custody_status.c.state).where(custody_status.c.person_id == DECOY_PERSON_ID)
        ).scalar_one()
    assert (events, state) == (1, "removed")

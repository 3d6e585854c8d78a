"""Facility lists, including ICE's FOIA list exactly as published."""

from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from safevine.ingest.facilities import ingest_facilities
from safevine.ingest.facilities_csv import ice_facility_code
from safevine.ingest.source import UnreadableSourceError, file_lines
from safevine.store.schema import facilities
from tests.builders import csv_lines

ICE_LIST = Path(__file__).parents[3] / "shared" / "data" / "ice-facilities-fy2007.csv"
if not ICE_LIST.exists():  # a checkout without shared/ beside it uses the packaged copy
    ICE_LIST = Path(__file__).parents[2] / "src/safevine/demo/data/ice-facilities-fy2007.csv"


def test_the_ice_list_loads_as_is_with_stable_distinct_codes(engine: Engine) -> None:
    summary = ingest_facilities(engine, file_lines(ICE_LIST), source=ICE_LIST.name)
    assert (summary.total, summary.applied, summary.rejected) == (960, 960, 0)
    with engine.connect() as connection:
        rows = connection.execute(select(facilities)).all()
    assert len({r.code for r in rows}) == 960
    eloy = next(r for r in rows if r.name == "ELOY FEDERAL CONTRACT FAC")
    assert eloy.code == ice_facility_code("ELOY FEDERAL CONTRACT FAC", "ELOY", "AZ")
    assert (eloy.city, eloy.state, eloy.time_zone, eloy.average_population) == (
        "ELOY",
        "AZ",
        "America/Phoenix",
        1484,
    )
    polk = [r for r in rows if r.name == "POLK COUNTY JAIL"]
    assert len(polk) >= 2 and len({r.code for r in polk}) == len(polk)
    again = ingest_facilities(engine, file_lines(ICE_LIST), source=ICE_LIST.name)
    assert (again.applied, again.duplicates) == (0, 960)


def test_safevines_own_format_updates_in_place(engine: Engine) -> None:
    header = ["code", "name", "city", "state", "phone", "time_zone"]
    ingest_facilities(
        engine,
        csv_lines(header, ["tx-1", "Port Isabel SPC", "Los Fresnos", "TX", "", ""]),
        source="a.csv",
    )
    summary = ingest_facilities(
        engine,
        csv_lines(
            header,
            ["TX-1", "Port Isabel SPC", "Los Fresnos", "TX", "956-555-0100", "America/Chicago"],
            ["TX-2", "Bad state", "X", "ZZ", "", ""],
            ["TX-3", "Bad zone", "X", "TX", "", "Mars/Olympus"],
            ["TX 4", "Bad code", "X", "TX", "", ""],
        ),
        source="b.csv",
    )
    assert (summary.applied, summary.rejected) == (1, 3)
    assert [r.field for r in summary.rejects] == ["state", "time_zone", "code"]
    with engine.connect() as connection:
        row = connection.execute(select(facilities).where(facilities.c.code == "TX-1")).one()
    assert (row.phone, row.time_zone) == ("956-555-0100", "America/Chicago")


def test_an_unknown_header_is_refused(engine: Engine) -> None:
    with pytest.raises(UnreadableSourceError, match="neither safevine's columns"):
        ingest_facilities(engine, csv_lines(["facility", "town"], ["a", "b"]), source="x.csv")


def test_a_facility_file_sets_cadences_and_refuses_nonsense_naming_the_field(
    engine: Engine,
) -> None:
    from datetime import UTC, datetime

    from safevine.actions import feed_health
    from safevine.actions.actor import Actor
    from safevine.store.schema import ingest_rejects

    header = ["code", "name", "roster_every_hours", "events_every_hours", "down_after_hours"]
    summary = ingest_facilities(
        engine,
        csv_lines(
            header,
            ["A1", "Quick", "0.25", "1", "6"],
            ["A2", "Learned", "", "", ""],
            ["B1", "Bad", "-1", "", ""],
            ["B2", "Bad", "", "1e9", ""],
            ["B3", "Bad", "", "", "nan"],
            ["B4", "Bad", "", "", "99999"],
            ["B5", "Bad", "0.001", "", ""],
        ),
        source="cadence.csv",
    )
    assert (summary.applied, summary.rejected) == (2, 5)
    with engine.connect() as connection:
        rows = {
            r.code: (r.roster_every_minutes, r.events_every_minutes, r.down_after_minutes)
            for r in connection.execute(select(facilities))
        }
        fields = [
            (r.line, r.field)
            for r in connection.execute(select(ingest_rejects).order_by(ingest_rejects.c.line))
        ]
    assert rows == {"A1": (15, 60, 360), "A2": (None, None, None)}
    assert fields == [
        (4, "roster_every_hours"),
        (5, "events_every_hours"),
        (6, "down_after_hours"),
        (7, "down_after_hours"),
        (8, "roster_every_hours"),
    ]
    # Staff set A2's cadence; a file that says nothing about it leaves it alone.
    with engine.begin() as connection:
        feed_health.set_cadence(
            connection, Actor("sue"), "A2", {"events_every": 2.0}, datetime.now(UTC)
        )
    ingest_facilities(engine, csv_lines(["code", "name"], ["A2", "Learned"]), source="again.csv")
    with engine.connect() as connection:
        kept = connection.execute(
            select(facilities.c.events_every_minutes).where(facilities.c.code == "A2")
        ).scalar()
    assert kept == 120

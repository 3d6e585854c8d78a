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

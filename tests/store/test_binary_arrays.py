"""Arrays built in PostgreSQL's binary format (`store.binary_arrays`), through a real
server: what it reads back is what was given, byte for byte what psycopg itself would have
sent where it picks the same element type, and anything the builders do not take goes to
psycopg as before, so the server accepts and refuses the same values."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from psycopg.adapt import PyFormat, Transformer
from sqlalchemy import Engine

from safevine.store import binary_arrays
from safevine.store.binary_arrays import (
    Int8Array,
    TextArray,
    TimestamptzArray,
    column_array,
    key_array,
)
from tests.ingest.feed_properties import fuzz_settings

INT8_MIN, INT8_MAX = -(2**63), 2**63 - 1


@pytest.fixture
def raw(postgres_engine: Engine) -> Iterator[psycopg.Connection[Any]]:
    """A psycopg connection of the engine's, with the arrays registered, in autocommit."""
    with postgres_engine.connect() as connection:
        driver = connection.connection.driver_connection
        assert isinstance(driver, psycopg.Connection)
        driver.rollback()
        driver.autocommit = True
        binary_arrays.register(driver)
        yield driver
        driver.autocommit = False


def _back(raw: psycopg.Connection[Any], type_name: str, value: Any) -> list[Any]:
    with raw.cursor() as cursor:
        cursor.execute(f"SELECT %b::{type_name}[]", [value])
        row = cursor.fetchone()
    assert row is not None
    return list(row[0])


def _psycopg_bytes(raw: psycopg.Connection[Any], values: list[Any]) -> bytes:
    """What psycopg's own list dumper sends for `values`."""
    transformer = Transformer(raw)
    dumper = transformer.get_dumper(values, PyFormat.BINARY)
    dumped = dumper.dump(values)
    assert dumped is not None
    return bytes(dumped)


AWKWARD_TEXT = ["", 'O\'Brien "q"', "back\\slash", "José Ñ", "مرحبا", "smile 🙂", "x" * 100_000]
MOMENTS = [
    datetime(1, 1, 1, tzinfo=UTC),
    datetime(1999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
    datetime(2000, 1, 1, tzinfo=UTC),
    datetime(2026, 3, 8, 2, 30, 0, 1, tzinfo=timezone(timedelta(hours=-5))),
    datetime(2026, 7, 1, 12, tzinfo=timezone(timedelta(hours=5, minutes=45, seconds=30))),
    datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
]


@pytest.mark.parametrize(
    ("type_name", "values", "built"),
    [
        ("bigint", [1, 0, -1, INT8_MIN, INT8_MAX], Int8Array),
        ("bigint", [None, 5, None], Int8Array),
        ("integer", [2**31 - 1, -(2**31), 0], Int8Array),
        ("text", AWKWARD_TEXT, TextArray),
        ("text", ["a", None, ""], TextArray),
        ("timestamptz", MOMENTS, TimestamptzArray),
        ("timestamptz", [None, MOMENTS[3]], TimestamptzArray),
    ],
)
def test_the_server_reads_back_what_was_given(
    raw: psycopg.Connection[Any], type_name: str, values: list[Any], built: type
) -> None:
    column_type = {
        "bigint": "BIGINT",
        "integer": "INTEGER",
        "timestamptz": "TIMESTAMP WITH TIME ZONE",
    }
    array = column_array(column_type.get(type_name, type_name), values)
    assert type(array) is built
    assert _back(raw, type_name, array) == values


@pytest.mark.parametrize("type_name", ["BIGINT", "text", "TIMESTAMP WITH TIME ZONE"])
def test_an_empty_array_is_one_the_server_takes(
    raw: psycopg.Connection[Any], type_name: str
) -> None:
    sql_type = {"BIGINT": "bigint", "TIMESTAMP WITH TIME ZONE": "timestamptz"}.get(
        type_name, type_name
    )
    assert _back(raw, sql_type, column_array(type_name, [])) == []


def test_json_goes_as_text_and_the_cast_reads_it(raw: psycopg.Connection[Any]) -> None:
    details = ['{"reason":"bond"}', "{}", '{"court":"Eloy","n":[1,2]}']
    array = column_array("JSON", details)
    assert type(array) is TextArray
    assert _back(raw, "json", array) == [{"reason": "bond"}, {}, {"court": "Eloy", "n": [1, 2]}]


@pytest.mark.parametrize(
    "values",
    [
        [2**31, INT8_MIN, INT8_MAX, 7],  # psycopg picks int8 for these too
        AWKWARD_TEXT,
        ["a", None, "b"],
        MOMENTS,
        [MOMENTS[0], None],
    ],
)
def test_the_bytes_are_psycopgs_own(raw: psycopg.Connection[Any], values: list[Any]) -> None:
    type_name = {int: "BIGINT", str: "text", datetime: "TIMESTAMP WITH TIME ZONE"}[type(values[0])]
    assert bytes(column_array(type_name, values)) == _psycopg_bytes(raw, values)


@pytest.mark.parametrize(
    ("type_name", "values"),
    [
        ("BIGINT", [True, False]),  # bools are ints to Python, not to the server
        ("BIGINT", [1.5, 2]),
        ("BIGINT", [1, "2"]),
        ("BIGINT", [2**63]),  # beyond 8 bytes: psycopg sends numeric
        ("text", [b"bytes"]),
        ("TIMESTAMP WITH TIME ZONE", [datetime(2026, 1, 1)]),  # no zone
        ("BOOLEAN", [True]),
    ],
)
def test_anything_else_is_left_to_psycopg(type_name: str, values: list[Any]) -> None:
    assert column_array(type_name, values) == values
    assert type(column_array(type_name, values)) is list


def test_values_the_server_refuses_are_refused_as_before(raw: psycopg.Connection[Any]) -> None:
    for value in (column_array("text", ["a\x00b"]), ["a\x00b"]):
        with pytest.raises(psycopg.DataError):
            _back(raw, "text", value)
    for value in (column_array("INTEGER", [2**31]), [2**31]):
        with pytest.raises(psycopg.errors.NumericValueOutOfRange):
            _back(raw, "integer", value)
    with pytest.raises(psycopg.errors.NumericValueOutOfRange):
        _back(raw, "bigint", column_array("BIGINT", [2**63]))


def test_keys_are_built_for_integers_and_text(raw: psycopg.Connection[Any]) -> None:
    assert type(key_array([3, 1, 2])) is Int8Array
    assert type(key_array(["b", "a"])) is TextArray
    assert _back(raw, "bigint", key_array([3, 1, 2])) == [3, 1, 2]
    assert _back(raw, "text", key_array(["b", "a"])) == ["b", "a"]
    assert _back(raw, "text", key_array([])) == []
    assert _back(raw, "bigint", key_array([])) == []  # an empty list has no element type
    assert key_array([1, "a"]) == [1, "a"]


def test_without_registering_a_connection_would_send_bytea(
    raw: psycopg.Connection[Any], postgres_engine: Engine
) -> None:
    """Why `register` exists (and `Driver` calls it): an unregistered connection takes
    the arrays for bytes."""
    url = str(postgres_engine.url.set(drivername="postgresql"))
    with (
        psycopg.connect(url) as fresh,
        fresh.cursor() as cursor,
        pytest.raises(psycopg.errors.CannotCoerce),
    ):
        cursor.execute("SELECT %b::bigint[]", [key_array([1])])
    assert _back(raw, "bigint", key_array([1])) == [1]


TEXT = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"))
ZONES = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
AWARE = st.datetimes(timezones=ZONES)


@fuzz_settings(40)
@given(
    ints=st.lists(st.none() | st.integers(INT8_MIN, INT8_MAX), max_size=30),
    texts=st.lists(st.none() | TEXT, max_size=30),
    moments=st.lists(st.none() | AWARE, max_size=30),
)
def test_any_values_come_back(
    raw: psycopg.Connection[Any],
    ints: list[int | None],
    texts: list[str | None],
    moments: list[datetime | None],
) -> None:
    assert _back(raw, "bigint", column_array("BIGINT", ints)) == ints
    assert _back(raw, "text", column_array("text", texts)) == texts
    assert _back(raw, "timestamptz", column_array("TIMESTAMP WITH TIME ZONE", moments)) == moments

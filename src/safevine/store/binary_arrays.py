"""PostgreSQL arrays in the binary format, built a column at a time (`driver_sql`).

psycopg writes a list parameter through its generic list dumper: it scans the list for its
element type, then dumps it item by item in Python, a call and a length prefix each. A
feed's chunk sends its rows as one array a column, so that loop ran for every value of
every row. Here an array of 8-byte integers, of text or of moments is built whole, with
the per-item work left to C (`struct`, `map`, `bytes.join`); the element types are the
ones the server casts to the column's (`::integer[]` from `bigint[]` checks the range,
`::json[]` from `text[]` checks the JSON), so what the server accepts or refuses is what
it was. A list holding anything else (a bool, a float, a naive moment...) is left to
psycopg as before.

The binary format (PostgreSQL's `array_send`): dimensions, a has-nulls flag and the
element type's oid, then each dimension's length and lower bound, then each element as
its length (-1 for NULL) and its bytes; a moment is the microseconds from 2000-01-01 UTC.
"""

import struct
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from itertools import chain, repeat
from operator import floordiv, sub
from typing import Any

from psycopg import Connection
from psycopg.adapt import Dumper, PyFormat
from psycopg.pq import Format

_HEAD = struct.Struct(">iiiii")  # one dimension, has nulls, element oid, length, lower bound
_EMPTY = struct.Struct(">iii")
_NULL = struct.pack(">i", -1)
_LENGTH = struct.Struct(">i").pack
_EIGHT = struct.Struct(">iq").pack  # an 8-byte value with its length
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class _Array(bytes):
    """An array already in the binary format; the subclass names its element's type and
    its own."""

    element = 0
    oid = 0


class Int8Array(_Array):
    element, oid = 20, 1016


class TextArray(_Array):
    element, oid = 25, 1009


class TimestamptzArray(_Array):
    element, oid = 1184, 1185


def _dumper(array_oid: int) -> type[Dumper]:
    class ArrayDumper(Dumper):
        format = Format.BINARY
        oid = array_oid

        def dump(self, obj: Any) -> bytes:
            return bytes(obj)

    return ArrayDumper


_DUMPERS = {cls: _dumper(cls.oid) for cls in (Int8Array, TextArray, TimestamptzArray)}


def register(connection: Connection[Any]) -> None:
    """Make `connection` send these arrays as themselves (once a connection: without it,
    psycopg would send them as bytea)."""
    adapters = connection.adapters
    for cls, dumper in _DUMPERS.items():
        if adapters.get_dumper(cls, PyFormat.BINARY) is not dumper:
            adapters.register_dumper(cls, dumper)


def _array(cls: type[_Array], items: list[bytes], count: int, nulls: bool) -> _Array:
    if not count:
        return cls(_EMPTY.pack(0, 0, cls.element))  # no dimensions, as PostgreSQL sends one
    return cls(_HEAD.pack(1, 1 if nulls else 0, cls.element, count, 1) + b"".join(items))


def _int8(values: Sequence[Any]) -> _Array | None:
    if not set(map(type, values)) <= {int, type(None)}:
        return None
    try:
        if None in values:
            items = [_NULL if v is None else _EIGHT(8, v) for v in values]
            return _array(Int8Array, items, len(values), True)
        return _array(Int8Array, list(map(_EIGHT, repeat(8), values)), len(values), False)
    except struct.error:
        return None  # beyond 8 bytes: psycopg sends it as numeric, which the cast refuses


def _text(values: Sequence[Any]) -> _Array | None:
    if not set(map(type, values)) <= {str, type(None)}:
        return None
    if None in values:
        items = [_NULL if v is None else _LENGTH(len(b := v.encode())) + b for v in values]
        return _array(TextArray, items, len(values), True)
    encoded = list(map(str.encode, values))
    lengths = map(_LENGTH, map(len, encoded))
    joined = list(chain.from_iterable(zip(lengths, encoded, strict=True)))
    return _array(TextArray, joined, len(values), False)


def _timestamptz(values: Sequence[Any]) -> _Array | None:
    if not set(map(type, values)) <= {datetime, type(None)}:
        return None
    try:
        if None in values:
            items = [
                _NULL if v is None else _EIGHT(8, (v - _EPOCH) // _MICROSECOND) for v in values
            ]
            return _array(TimestamptzArray, items, len(values), True)
        micros = map(floordiv, map(sub, values, repeat(_EPOCH)), repeat(_MICROSECOND))
        return _array(TimestamptzArray, list(map(_EIGHT, repeat(8), micros)), len(values), False)
    except TypeError:
        # A moment without a zone: psycopg sends it as a time without zone, as before.
        return None


_BUILDERS: dict[str, Callable[[Sequence[Any]], _Array | None]] = {
    "BIGINT": _int8,
    "INTEGER": _int8,
    "SMALLINT": _int8,
    "text": _text,
    "JSON": _text,
    "JSONB": _text,
    "TIMESTAMP WITH TIME ZONE": _timestamptz,
}


def column_array(type_name: str, values: Sequence[Any]) -> Any:
    """`values` for a `%b::type_name[]` parameter: the binary array built here when the
    type and every value allow it, else the list itself (psycopg's own dumping)."""
    build = _BUILDERS.get(type_name)
    built = build(values) if build is not None else None
    return list(values) if built is None else built


def key_array(values: Sequence[Any]) -> Any:
    """A list of keys (all integers or all text) for `= ANY(%b::type[])`, else the list."""
    built = _int8(values) if values and type(values[0]) is int else _text(values)
    return list(values) if built is None else built

"""Pickling a frozen dataclass through its constructor."""

from dataclasses import fields
from typing import Any


def by_constructor(instance: Any) -> tuple[Any, ...]:
    """A `__reduce__` value that rebuilds `instance` by calling its class with its fields.

    Python's default rebuilds a dataclass without calling it, and the code working on such
    instances afterwards ran 15-20% slower (BENCHMARKS.md, event ingest, sixth round):
    parsed events cross from the parsing child (`ingest.parse_process`) this way.
    """
    return type(instance), tuple(getattr(instance, f.name) for f in fields(instance))

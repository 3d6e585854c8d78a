"""What a log may say about an exception: its types, its database error code and where it
was raised, never its message.

Messages carry data: a database error repeats the statement's parameters (the A-number
or the names that were searched for), PostgreSQL's detail repeats the offending value, and
our own errors name the record and field they reject. Types, codes and places are enough
to find the fault and say nothing about a person.
"""

import traceback
from pathlib import Path
from types import TracebackType

_PACKAGE = Path(__file__).parent


def describe(error: BaseException) -> dict[str, str]:
    """`error` (the type, with what it wraps), `code` for a database error, `at` (the
    innermost frame in safevine's own code, else the innermost frame)."""
    names = [_qualified(type(error))]
    original = getattr(error, "orig", None) or error.__cause__
    if isinstance(original, BaseException):
        names.append(_qualified(type(original)))
    summary = {"error": " <- ".join(names)}
    code = _database_code(original if isinstance(original, BaseException) else error)
    if code:
        summary["code"] = code
    place = _place(error.__traceback__)
    if place:
        summary["at"] = place
    return summary


def _qualified(kind: type[BaseException]) -> str:
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


def _database_code(error: BaseException) -> str | None:
    # psycopg's SQLSTATE, sqlite3's symbolic result code (Python 3.11+).
    for attribute in ("sqlstate", "sqlite_errorname"):
        value = getattr(error, attribute, None)
        if isinstance(value, str) and value:
            return value
    return None


def _place(trace: TracebackType | None) -> str | None:
    frames = traceback.extract_tb(trace)
    if not frames:
        return None
    own = [frame for frame in frames if Path(frame.filename).is_relative_to(_PACKAGE)]
    frame = (own or frames)[-1]
    path = Path(frame.filename)
    shown = path.relative_to(_PACKAGE.parent) if path.is_relative_to(_PACKAGE) else path.name
    return f"{shown}:{frame.lineno} in {frame.name}"

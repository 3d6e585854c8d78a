"""Validators for single feed fields. Each returns a clean value or raises FieldError."""

import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from safevine.domain.errors import FieldError

EARLIEST_BIRTH = date(1900, 1, 1)
_CONTROL = re.compile(r"[\x00-\x1f]")


def text(
    record: Mapping[str, Any], key: str, field: str, *, required: bool, limit: int = 200
) -> str | None:
    """A stripped string; None when absent and not required."""
    value = record.get(key)
    # Plain strings are nearly every value a feed holds: only others need their type checked.
    result = (value if value.__class__ is str else _as_text(value, field)).strip()
    if not result:
        if required:
            raise FieldError(field, "is required")
        return None
    if len(result) > limit:
        raise FieldError(field, f"is longer than {limit} characters")
    if _CONTROL.search(result):
        raise FieldError(field, "contains control characters")
    return result


def _as_text(value: Any, field: str) -> str:
    """A value that is not a plain str as text: "" for None, digits for a whole number."""
    if value is None:
        return ""
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise FieldError(field, f"must be text, not {type(value).__name__}")
    return str(value)


def timestamp(value: str, field: str) -> datetime:
    """An ISO 8601 date and time that states its UTC offset (`Z` or `-05:00`)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise FieldError(
            field, f"{value!r} is not an ISO 8601 date and time, e.g. 2026-11-25T14:03:00-05:00"
        ) from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise FieldError(
            field, f"{value!r} has no UTC offset; add one, e.g. 2026-11-25T14:03:00-05:00 or Z"
        )
    return parsed


def birth_date(value: str, field: str, today: date) -> date:
    """An ISO date (YYYY-MM-DD) between 1900 and today."""
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        raise FieldError(field, f"{value!r} is not a date in the form YYYY-MM-DD") from None
    if parsed > today:
        raise FieldError(field, f"{value!r} is in the future")
    if parsed < EARLIEST_BIRTH:
        raise FieldError(field, f"{value!r} is before {EARLIEST_BIRTH.isoformat()}")
    return parsed


def whole_number(value: Any, field: str) -> int:
    if isinstance(value, bool):
        raise FieldError(field, "must be a whole number")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise FieldError(field, f"{value!r} is not a whole number") from None
    if number < 0:
        raise FieldError(field, "must not be negative")
    return number

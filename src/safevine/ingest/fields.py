"""Validators for single feed fields. Each returns a clean value or raises FieldError."""

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from safevine.domain.errors import FieldError
from safevine.domain.value_ranges import (
    EVENT_AHEAD,
    MAX_COUNT,
    TEXT_LENGTH,
    check_birth,
    check_moment,
    check_text,
    check_whole,
)


def text(
    record: Mapping[str, Any], key: str, field: str, *, required: bool, limit: int = TEXT_LENGTH
) -> str | None:
    """A stripped string; None when absent and not required."""
    value = record.get(key)
    # Plain strings are nearly every value a feed holds: only others need their type checked.
    result = (value if value.__class__ is str else _as_text(value, field)).strip()
    if not result:
        if required:
            raise FieldError(field, "is required")
        return None
    return check_text(result, field, limit)


def _as_text(value: Any, field: str) -> str:
    """A value that is not a plain str as text: "" for None, digits for a whole number."""
    if value is None:
        return ""
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise FieldError(field, f"must be text, not {type(value).__name__}")
    return str(value)


def timestamp(value: str, field: str, ahead: timedelta = EVENT_AHEAD) -> datetime:
    """An ISO 8601 date and time that states its UTC offset (`Z` or `-05:00`), within the
    range of `value_ranges.check_moment` (no further ahead of now than `ahead`)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise FieldError(
            field,
            f"{value[:40]!r} is not an ISO 8601 date and time, e.g. 2026-11-25T14:03:00-05:00",
        ) from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise FieldError(
            field, f"{value!r} has no UTC offset; add one, e.g. 2026-11-25T14:03:00-05:00 or Z"
        )
    return check_moment(parsed, field, datetime.now(UTC), ahead)


def birth_date(value: str, field: str, today: date) -> date:
    """An ISO date (YYYY-MM-DD) between 1900 and today."""
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        raise FieldError(field, f"{value[:40]!r} is not a date in the form YYYY-MM-DD") from None
    return check_birth(parsed, field, today)


def whole_number(value: Any, field: str, maximum: int = MAX_COUNT) -> int:
    """A whole number from 0 to `maximum`, from an int or its digits."""
    return check_whole(value, field, maximum)

"""The ranges of values safevine accepts, defined once.

Every feed parser, API model and CLI argument checks its values here, so a value out of
range is the same field error on SQLite and PostgreSQL and never reaches a conversion that
overflows (a UTC offset applied to 0001-01-01, a float `1e400` made an integer) or a
driver that refuses it (a NUL, a lone surrogate, an integer wider than its column).
"""

import re
import zoneinfo
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any

from safevine.domain.errors import FieldError

# Dates of birth: nobody in custody was born before this, or after today.
EARLIEST_BIRTH = date(1900, 1, 1)
# Every stored moment (events, hearings, snapshots, protections, quiet hours): from here...
EARLIEST_MOMENT = datetime(1900, 1, 1, tzinfo=UTC)
# ...to this far ahead of now. A custody event happens now: one dated a year ahead is a
# mistake, not a warning (the hold rules already hold anything minutes ahead).
EVENT_AHEAD = timedelta(days=366)
# Immigration court hearings are set years ahead, never decades.
HEARING_AHEAD = timedelta(days=10 * 366)

# `custody_events.sequence` is an INTEGER column: 32 bits on PostgreSQL.
MAX_SEQUENCE = 2**31 - 1
# Row ids are BIGINT.
MAX_ID = 2**63 - 1
# Whole numbers a feed may give (facility populations, counts): INTEGER columns.
MAX_COUNT = 2**31 - 1

# Text lengths, in characters.
NAME_LENGTH = 100
CODE_LENGTH = 40
TEXT_LENGTH = 200
IDENTIFIER_LENGTH = 200
REASON_LENGTH = 2000
ADDRESS_LENGTH = 320

# A feed line longer than this is rejected unread (SAFEVINE_FEED_MAX_LINE_BYTES overrides).
FEED_LINE_BYTES = 1024 * 1024
# ...which may not be set below what one ordinary record needs.
MIN_FEED_LINE_BYTES = 4096
# How much of a rejected record's raw text is kept with the reject.
RAW_KEPT = 2000

# Characters no text may hold: C0 and C1 controls (NUL among them, which PostgreSQL
# refuses at the driver) and DEL. Lone surrogates are caught separately: JSON can carry
# them ("\ud800"), and no UTF-8 encoder will write one.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_LAYOUT = re.compile(r"[\t\r\n]")
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


def check_text(value: str, field: str, limit: int = TEXT_LENGTH) -> str:
    """`value` unchanged if it fits; FieldError naming `field` otherwise."""
    if len(value) > limit:
        raise FieldError(field, f"is longer than {limit} characters")
    # Controls and surrogates are never printable, and nearly every value is: one pass in
    # C instead of two searches (a feed checks about ten values a record).
    if value.isprintable():
        return value
    if _CONTROL.search(value):
        raise FieldError(field, "contains control characters")
    if _SURROGATE.search(value):
        raise FieldError(field, "contains characters that are not valid Unicode")
    return value


def check_free_text(value: str, field: str, limit: int = REASON_LENGTH) -> str:
    """Like `check_text`, but tabs and line breaks are allowed (a reason, a note)."""
    check_text(_LAYOUT.sub(" ", value), field, limit)
    return value


def storable(value: str, limit: int) -> str:
    """`value` as both databases can keep it: NULs and lone surrogates (which PostgreSQL
    and every UTF-8 encoder refuse) replaced by U+FFFD, cut to `limit` characters. For text
    kept as evidence (a rejected record's raw text, a reason), never for data."""
    kept = value if len(value) <= limit else value[: limit - 1] + "…"
    return _UNSTORABLE.sub("\ufffd", kept)


def clean_text(value: str) -> bool:
    """True when `value` holds no character `check_text` refuses (for API models)."""
    return value.isprintable() or not (_CONTROL.search(value) or _SURROGATE.search(value))


def check_moment(
    value: datetime, field: str, now: datetime, ahead: timedelta = EVENT_AHEAD
) -> datetime:
    """An aware datetime between EARLIEST_MOMENT and `now + ahead`; FieldError otherwise.

    Comparing aware datetimes never overflows, while converting one does: this check comes
    before any `astimezone`."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise FieldError(field, "has no UTC offset; add one, e.g. 2026-11-25T14:03:00-05:00 or Z")
    if value < EARLIEST_MOMENT:
        raise FieldError(field, f"is before {EARLIEST_MOMENT.date().isoformat()}")
    if value > now + ahead:
        raise FieldError(field, f"is more than {ahead.days} days in the future")
    return value


def since(value: str, field: str, now: datetime) -> datetime:
    """The start of a period asked for (`--since`, `?since=`): an ISO date, or a date and
    time (UTC when it states no offset), within `check_moment`'s range; FieldError
    otherwise, never an overflow once the database converts it to UTC."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise FieldError(
            field, f"{_quote(value)} is not an ISO date or date and time, e.g. 2026-11-25"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return check_moment(parsed, field, now)


def check_birth(value: date, field: str, today: date) -> date:
    if value > today:
        raise FieldError(field, f"{value.isoformat()!r} is in the future")
    if value < EARLIEST_BIRTH:
        raise FieldError(field, f"{value.isoformat()!r} is before {EARLIEST_BIRTH.isoformat()}")
    return value


def check_whole(value: Any, field: str, maximum: int, minimum: int = 0) -> int:
    """A whole number from an int or its digits, within [minimum, maximum].

    Refuses booleans, fractions and non-finite floats (`1e400` parses as infinity) rather
    than truncating them, and digit strings too long to be in range before converting
    them (Python refuses to convert more than 4,300 digits at all)."""
    if isinstance(value, bool):
        raise FieldError(field, "must be a whole number")
    if isinstance(value, float):
        if not value.is_integer():
            raise FieldError(field, f"{value!r} is not a whole number")
        value = int(value)
    if isinstance(value, str):
        digits = value.strip()
        if len(digits.lstrip("+-").lstrip("0")) > len(str(maximum)):
            raise FieldError(field, _out_of_range(minimum, maximum))
        try:
            value = int(digits)
        except ValueError:
            raise FieldError(field, f"{_quote(digits)} is not a whole number") from None
    if not isinstance(value, int):
        raise FieldError(field, "must be a whole number")
    if not minimum <= value <= maximum:
        raise FieldError(field, _out_of_range(minimum, maximum))
    return value


def _out_of_range(minimum: int, maximum: int) -> str:
    return f"must be a whole number from {minimum} to {maximum}"


def _quote(value: str, limit: int = 40) -> str:
    """A value quoted for an error message, cut short: errors must not echo huge input."""
    return repr(value if len(value) <= limit else value[:limit] + "…")


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def check_time_zone(value: str, field: str) -> str:
    """An IANA zone name (`America/Chicago`). Only names of the zone database: a path the
    loader would also open (`America`, a region; `../x`; an absolute path) is refused."""
    if value not in _zones():
        raise FieldError(field, f"{value[:64]!r} is not an IANA time zone, e.g. America/Chicago")
    return value

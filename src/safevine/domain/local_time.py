"""A moment in a facility's local time, in the reader's language: the parts Babel is slow
to build, each built once and looked up after.

Babel parses a locale given by name on every call, and applies a pattern field by field:
tens of microseconds a date or a time, on every search result and every message. Moments
fall on few days, and a day has 1,440 minutes, so the long date of a day and the short
time of a minute are formatted once per language. The short and long date patterns hold
no zone and the short time pattern no seconds, in every language served (checked in
tests/notify/test_messages.py and tests/web/test_result_text.py), so nothing is lost.
"""

from datetime import date, time
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.core import Locale
from babel.dates import format_date, format_time


@lru_cache(maxsize=512)
def facility_zone(name: str | None) -> ZoneInfo:
    """The facility's zone; UTC when it has none or one this machine does not know."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


@lru_cache(maxsize=16)
def locale_of(language: str) -> Locale:
    return Locale.parse(language)


@lru_cache(maxsize=4096)
def long_date(day: date, language: str) -> str:
    """ "November 24, 2026" in English."""
    return format_date(day, "long", locale=locale_of(language))


@lru_cache(maxsize=4096)
def short_time(clock: time, language: str) -> str:
    """ "6:15 PM" in English; `clock` is a naive hour and minute."""
    return format_time(clock, "short", locale=locale_of(language))

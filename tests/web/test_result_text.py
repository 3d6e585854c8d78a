"""A result's dates read as Babel's long formats write them, in every language, with the
time zone named in the reader's language (CLDR's words where the language has no
abbreviation), never as a bare offset such as "-0700"."""

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time, get_timezone_name
from hypothesis import given, settings
from hypothesis import strategies as st

from safevine.domain.local_time import long_date
from safevine.domain.zone_names import zone_name
from safevine.i18n import LANGUAGES
from safevine.web.public.results import long_datetime

ZONES = [
    "UTC",
    "America/New_York",
    "America/Phoenix",
    "Pacific/Honolulu",
    "Pacific/Guam",
    "America/Puerto_Rico",
]


@settings(max_examples=300, deadline=None)
@given(
    seconds=st.integers(min_value=0, max_value=40 * 365 * 86400),
    micro=st.integers(min_value=0, max_value=999_999),
    zone=st.sampled_from(ZONES),
    language=st.sampled_from(LANGUAGES),
)
def test_long_texts_are_babels(seconds: int, micro: int, zone: str, language: str) -> None:
    moment = datetime(2000, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds, microseconds=micro)
    local = moment.astimezone(ZoneInfo(zone))
    text = long_datetime(local, language)
    day = format_date(local, "long", locale=language)
    assert long_date(local.date(), language) == day and day in text
    assert format_time(local, "short", locale=language) in text
    named = zone_name(local, language)
    assert named in text and not re.search(r"[+-]\d{4}\b", text), text
    assert named in (
        get_timezone_name(local, "short", locale=language),
        get_timezone_name(local, "long", locale=language),
    )


def test_a_zone_is_named_in_the_readers_language() -> None:
    winter = datetime(2026, 1, 10, 12, tzinfo=ZoneInfo("America/Denver"))
    assert zone_name(winter, "en") == "MST"
    assert zone_name(winter, "es") == "hora estándar de las Montañas Rocosas"
    assert zone_name(winter.replace(month=7), "en") == "MDT"
    assert "MST" not in long_datetime(winter, "es") and "-0700" not in long_datetime(winter, "es")

"""A result's dates read exactly as Babel's long formats write them, in both languages."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from hypothesis import given, settings
from hypothesis import strategies as st

from safevine.i18n import LANGUAGES
from safevine.web.public.results import _day, long_datetime

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
    assert long_datetime(local, language) == format_datetime(local, "long", locale=language)
    assert _day(local.date(), language) == format_date(local, "long", locale=language)

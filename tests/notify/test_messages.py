"""Messages for every event kind, in both languages and both wordings: complete, translated,
discreet when asked, and within one GSM-7 SMS segment where the wording allows."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_date, format_time
from hypothesis import given, settings
from hypothesis import strategies as st

from safevine.domain.event_kinds import EventKind
from safevine.domain.sms_text import gsm7_length, is_gsm7, segments
from safevine.domain.zone_names import zone_name
from safevine.languages import CODES
from safevine.notify.messages import MessageContext, _when, render_code, render_event

# Long but real values: the longest facility name in ICE's list is about this long.
CONTENT = {
    "occurred_at": "2026-11-24T18:15:00+00:00",
    "facility_name": "SOUTH TEXAS DETENTION COMPLEX",
    "facility_city": "PEARSALL",
    "facility_state": "TX",
    "facility_time_zone": "America/Chicago",
}
DETAILS = {
    "released": {"reason": "supervision"},
    "removed": {"destination_country": "GT"},
    "hearing_scheduled": {
        "court": "San Antonio Immigration Court",
        "hearing_at": "2026-12-14T09:00:00-06:00",
    },
}
NAME = "María Guadalupe Hernández"
URL = "https://notify.example.gov/m/Jq3vK2mT9xW1bR7pL4sZ0e"


def context(language: str, wording: str) -> MessageContext:
    return MessageContext(language, wording, 482193, URL, "+1 800 555 0100")


@pytest.mark.parametrize("kind", [k.value for k in EventKind])
@pytest.mark.parametrize("language", ["en", "es"])
def test_standard_messages_name_the_person_event_place_and_time(kind: str, language: str) -> None:
    content = {**CONTENT, "kind": kind, "details": DETAILS.get(kind, {})}
    rendered = render_event(content, NAME, "ref", context(language, "standard"))
    assert NAME in rendered.text and URL in rendered.text and URL in rendered.html
    where = (
        "San Antonio"
        if kind == "hearing_scheduled"
        else "Guatemala"
        if kind == "removed"
        else "SOUTH TEXAS"
    )
    assert where in rendered.text
    assert "2026" in rendered.text
    assert is_gsm7(rendered.sms) and segments(rendered.sms) == 1, (
        rendered.sms,
        gsm7_length(rendered.sms),
    )
    assert rendered.sms.endswith(URL)
    assert rendered.voice.count(NAME) == 2  # read out twice
    if language == "es":
        assert " was " not in rendered.text and "Para ver o dejar" in rendered.text


@pytest.mark.parametrize("kind", [k.value for k in EventKind])
@pytest.mark.parametrize("language", ["en", "es"])
def test_discreet_messages_name_no_person_place_or_event(kind: str, language: str) -> None:
    content = {**CONTENT, "kind": kind, "details": DETAILS.get(kind, {})}
    rendered = render_event(content, NAME, "ref", context(language, "discreet"))
    for channel_text in (
        rendered.subject,
        rendered.text,
        rendered.html,
        rendered.sms,
        rendered.voice,
        str(rendered.data),
    ):
        for revealing in (
            "María",
            "Hernández",
            "SOUTH TEXAS",
            "PEARSALL",
            "Guatemala",
            "San Antonio",
            kind,
            "released",
            "liber",
        ):
            assert revealing not in channel_text
    assert "482193" in rendered.text and "4 8 2 1 9 3" in rendered.voice
    assert is_gsm7(rendered.sms) and segments(rendered.sms) == 1


@pytest.mark.parametrize("language", ["en", "es"])
def test_codes_name_nobody_and_fit_one_segment(language: str) -> None:
    rendered = render_code("048213", language)
    assert "048213" in rendered.text and "048213" in rendered.sms
    assert "0, 4, 8, 2, 1, 3" in rendered.voice
    assert segments(rendered.sms) == 1 and is_gsm7(rendered.sms)
    assert rendered.subject in ("Notification update", "Actualización de aviso")


def test_one_accented_letter_would_halve_an_sms() -> None:
    # Why SMS text is transliterated: a single "á" switches the message to UCS-2.
    assert segments("a" * 160) == 1
    assert segments("á" + "a" * 100) == 2


@settings(max_examples=300, deadline=None)
@given(
    moment=st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2040, 1, 1),
        timezones=st.just(UTC),
    ),
    zone=st.sampled_from(
        ["America/Chicago", "America/Phoenix", "America/New_York", "Pacific/Guam", None]
    ),
    language=st.sampled_from(list(CODES)),
)
def test_times_read_from_the_caches_are_what_babel_writes(
    moment: datetime, zone: str | None, language: str
) -> None:
    """The long date and short time are cached by day and by minute: the same text as
    formatting the whole moment, across zones and their daylight-saving changes."""
    local = moment.astimezone(ZoneInfo(zone or "UTC"))
    day = format_date(local, "long", locale=language)
    zone_text = zone_name(local, language)
    expected = f"{day}, {format_time(local, 'short', locale=language)} {zone_text}"
    assert _when(moment.isoformat(), zone, language, short=False) == expected


@pytest.mark.parametrize(("language", "way"), [("ar", "rtl"), ("en", "ltr"), ("zh", "ltr")])
def test_an_email_reads_in_its_languages_direction(language: str, way: str) -> None:
    content = {**CONTENT, "kind": "released", "details": DETAILS["released"]}
    rendered = render_event(content, NAME, "ref", context(language, "standard"))
    assert f'<html lang="{language}" dir="{way}">' in rendered.html
    assert f'<a href="{URL}" dir="ltr">' in rendered.html  # the link reads left to right
    code = render_code("048213", language)
    assert f'<html lang="{language}" dir="{way}">' in code.html

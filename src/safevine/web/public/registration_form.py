"""What a registration may ask for, validated with messages for people (translated later).

Only the channel, the address and the language are required besides the person; wording,
event kinds, quiet hours and voicemail have safe defaults.
"""

import re
from collections.abc import Mapping
from typing import Any

from safevine.domain.call_pin import check_pin
from safevine.domain.contact_address import Channel, mask_address, normalise_address
from safevine.domain.errors import FieldError
from safevine.domain.event_kinds import EventKind
from safevine.domain.quiet_hours import QuietHours, parse_clock
from safevine.domain.value_ranges import check_time_zone
from safevine.i18n import LANGUAGES, N_
from safevine.store.public.registrations import RegistrationRequest
from safevine.web.public.search_query import Problem, in_page_order

WORDINGS = ("standard", "discreet")
EVENT_LABELS = {
    "booked": N_("Booked into a facility"),
    "transferred": N_("Transferred to another facility"),
    "released": N_("Released"),
    "removed": N_("Removed from the United States"),
    "escaped": N_("Escaped"),
    "returned": N_("Returned to custody"),
    "died": N_("Died in custody"),
    "hearing_scheduled": N_("Immigration court hearing scheduled"),
}
TIME_ZONES = [
    ("America/New_York", N_("Eastern time")),
    ("America/Chicago", N_("Central time")),
    ("America/Denver", N_("Mountain time")),
    ("America/Phoenix", N_("Arizona time")),
    ("America/Los_Angeles", N_("Pacific time")),
    ("America/Anchorage", N_("Alaska time")),
    ("Pacific/Honolulu", N_("Hawaii time")),
    ("America/Puerto_Rico", N_("Puerto Rico and Virgin Islands time")),
    ("Pacific/Guam", N_("Guam time")),
]
# Quiet hours given without a zone are in the zone listed first.
DEFAULT_ZONE = "America/New_York"
ALL_EVENTS = tuple(kind.value for kind in EventKind)
_REFERENCE = re.compile(r"[A-Za-z0-9_-]{16,64}")

ADDRESS_PROBLEM = {
    Channel.EMAIL: N_("Enter an email address, such as name@example.org."),
    Channel.SMS: N_("Enter a phone number that can receive texts, such as 555 010 0100."),
    Channel.VOICE: N_("Enter a phone number, such as 555 010 0100."),
    Channel.WEBHOOK: N_("Enter the https address of your case system's webhook."),
}


def _text(raw: Mapping[str, Any], key: str) -> str:
    value = raw.get(key)
    return value.strip() if isinstance(value, str) else ""


# The form's fields in the order the page shows them (register.html).
PAGE_ORDER = (
    "person",
    "channel",
    "address",
    "pin",
    "language",
    "wording",
    "events",
    "quiet_hours",
)


def parse_registration(raw: Mapping[str, Any]) -> RegistrationRequest | list[Problem]:
    """A RegistrationRequest, or every problem (one per field at most)."""
    problems: list[Problem] = []
    person = _text(raw, "person")
    if not _REFERENCE.fullmatch(person):
        problems.append(Problem("person", N_("Choose a person from the search results first.")))
    channel: Channel | None = None
    try:
        channel = Channel(_text(raw, "channel"))
    except ValueError:
        problems.append(
            Problem(
                "channel", N_("Choose how to be told: email, text message, phone call or webhook.")
            )
        )
    address = ""
    if channel is not None:
        try:
            address = normalise_address(channel, _text(raw, "address"))
        except FieldError:
            problems.append(Problem("address", ADDRESS_PROBLEM[channel]))
    language = _text(raw, "language")
    if language not in LANGUAGES:
        problems.append(Problem("language", N_("Choose a language from the list.")))
    wording = _text(raw, "wording") or "standard"
    if wording not in WORDINGS:
        problems.append(Problem("wording", N_("Choose standard or discreet messages.")))
    events = _events(raw.get("events"))
    if events is None:
        problems.append(Problem("events", N_("Choose at least one kind of update.")))
    pin = None
    if channel == Channel.VOICE:
        try:
            pin = check_pin(raw.get("pin"))
        except FieldError:
            problems.append(Problem("pin", N_("Choose a PIN of exactly 4 digits for phone calls.")))
    quiet = _quiet_hours(raw, problems)
    voicemail = raw.get("allow_voicemail", True)
    if isinstance(voicemail, str):
        voicemail = voicemail.lower() not in ("0", "false", "no", "off")
    if problems or channel is None or events is None:
        return in_page_order(problems, PAGE_ORDER)
    return RegistrationRequest(
        person_ref=person,
        channel=channel,
        address=address,
        address_hint=mask_address(channel, address),
        language=language,
        wording=wording,
        events=events,
        quiet_hours=quiet,
        allow_voicemail=bool(voicemail),
        pin=pin,
    )


def _events(value: Any) -> tuple[str, ...] | None:
    if value is None or value == "":
        return ALL_EVENTS
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or any(i not in ALL_EVENTS for i in items):
        return None
    return tuple(kind for kind in ALL_EVENTS if kind in items)


def _quiet_hours(raw: Mapping[str, Any], problems: list[Problem]) -> QuietHours | None:
    block = raw.get("quiet_hours")
    values = (
        block
        if isinstance(block, Mapping)
        else {
            "start": raw.get("quiet_start"),
            "end": raw.get("quiet_end"),
            "time_zone": raw.get("time_zone"),
        }
    )
    start, end, zone = (_text(values, key) for key in ("start", "end", "time_zone"))
    if not (start or end):
        return None
    try:
        # Only a name of the zone database: ZoneInfo would also try to open a region's
        # folder (`America`) or a path, and fail other than with ValueError.
        window = QuietHours(
            parse_clock(start, "start"),
            parse_clock(end, "end"),
            check_time_zone(zone or DEFAULT_ZONE, "time_zone"),
        )
    except ValueError:
        problems.append(
            Problem(
                "quiet_hours",
                N_(
                    "Enter quiet hours as two 24-hour times, such as 21:00 and 08:00, "
                    "and a time zone."
                ),
            )
        )
        return None
    return window

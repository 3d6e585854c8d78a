"""How many SMS segments each text message takes in each language, rendered with long but
real values (a 25-letter name, ICE's long facility names, a 49-character link, a 6-digit
registration number). `docs/sms-segments.md` is this module's table; a test keeps the two
the same and holds every text to its target: a discreet message in one segment where the
language's alphabet and the link leave room, a standard one in at most two.

`python -m safevine.notify.sms_sizes > docs/sms-segments.md` writes the table again.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

from safevine.domain.sms_text import is_gsm7, length, segments
from safevine.languages import CODES, LANGUAGES
from safevine.notify.messages import (
    MessageContext,
    Rendered,
    render_code,
    render_correction,
    render_event,
    render_feed_notice,
)

NAME = "María Guadalupe Hernández"
# As long as the links a deployment sends: a short host, /m/ and a 22-character token.
URL = "https://vine.agency.gov/m/Jq3vK2mT9xW1bR7pL4sZ0e"
NUMBER = 482193
HELP_PHONE = "+1 800 555 0100"
FACILITY = {
    "facility_name": "SOUTH TEXAS DETENTION COMPLEX",
    "facility_city": "PEARSALL",
    "facility_state": "TX",
    "facility_time_zone": "America/Chicago",
}
EVENT = {**FACILITY, "occurred_at": "2026-11-24T18:15:00+00:00"}
DETAILS: dict[str, dict[str, str]] = {
    "booked": {},
    "transferred": {},
    "released": {"reason": "recognizance"},
    "removed": {"destination_country": "GT"},
    "escaped": {},
    "returned": {},
    "died": {},
    "hearing_scheduled": {
        "court": "San Antonio Immigration Court",
        "hearing_at": "2026-12-14T09:00:00-06:00",
    },
}
STATUS = {**FACILITY, "state": "in_custody", "since": "2026-11-20T10:00:00+00:00"}


@dataclass(frozen=True)
class Size:
    template: str
    language: str
    discreet: bool
    text: str

    @property
    def encoding(self) -> str:
        return "GSM-7" if is_gsm7(self.text) else "UCS-2"

    @property
    def length(self) -> int:
        return length(self.text)

    @property
    def segments(self) -> int:
        return segments(self.text)


def _context(language: str, wording: str, phone: str = "") -> MessageContext:
    return MessageContext(language, wording, NUMBER, URL, phone)


def _renders(language: str) -> Iterator[tuple[str, bool, Callable[[], Rendered]]]:
    yield "confirmation code", True, lambda: render_code("048213", language)
    for kind, details in DETAILS.items():
        content: dict[str, object] = {**EVENT, "kind": kind, "details": details}
        yield (
            f"event: {kind}",
            False,
            partial(render_event, content, NAME, "ref", _context(language, "standard")),
        )
    event = {**EVENT, "kind": "released", "details": DETAILS["released"]}
    yield (
        "discreet update",
        True,
        lambda: render_event(event, NAME, "ref", _context(language, "discreet")),
    )
    yield (
        "discreet update, with help line",
        True,
        lambda: render_event(event, NAME, "ref", _context(language, "discreet", HELP_PHONE)),
    )
    correction = {"retracted": event, "status": STATUS, "corrects": ["k"]}
    yield (
        "correction",
        False,
        lambda: render_correction(correction, NAME, "ref", _context(language, "standard")),
    )
    yield (
        "discreet correction",
        True,
        lambda: render_correction(correction, NAME, "ref", _context(language, "discreet")),
    )
    delay = {"since": "2026-11-24T18:15:00+00:00"}
    yield (
        "facility delay",
        False,
        lambda: render_feed_notice(
            "delay", delay, _context(language, "standard"), "America/Chicago"
        ),
    )
    yield (
        "facility resumed",
        False,
        lambda: render_feed_notice(
            "resumed", {}, _context(language, "standard"), "America/Chicago"
        ),
    )


def sizes() -> list[Size]:
    return [
        Size(template, language, discreet, render().sms)
        for language in CODES
        for template, discreet, render in _renders(language)
    ]


def table() -> str:
    found = sizes()
    templates = list(dict.fromkeys(s.template for s in found))
    by = {(s.template, s.language): s for s in found}
    head = ["| text | " + " | ".join(CODES) + " |", "|---|" + "---|" * len(CODES)]
    rows = [
        f"| {t} | " + " | ".join(f"{by[t, c].segments} ({by[t, c].length})" for c in CODES) + " |"
        for t in templates
    ]
    encodings = " | ".join(by[templates[0], c].encoding for c in CODES)
    lines = [
        "# SMS segments per text and language",
        "",
        "Written by `python -m safevine.notify.sms_sizes` (`src/safevine/notify/sms_sizes.py`);",
        "a test fails when this table and the catalogs disagree. Each cell is the number of",
        "segments a text takes, and in brackets its length in its encoding's units. One",
        "segment holds 160 GSM-7 characters or 70 UCS-2 ones; a longer text is sent in parts",
        "of 153 or 67. Rendered with a 25-letter name, a 29-letter facility, a",
        f"{len(URL)}-character link and a 6-digit registration number.",
        "",
        "Languages written in Latin letters (English, Spanish, French, Portuguese, Somali) go",
        "in GSM-7 with accents dropped; the others as written, in UCS-2 (Vietnamese too: its",
        "đ and tone marks carry meaning). A standard text is shortened, never its link, to",
        "one GSM-7 segment or two UCS-2 ones. A discreet text is never shortened: in UCS-2",
        "the link alone takes most of a 70-character segment, so there it takes two.",
        "",
        *head,
        f"| encoding | {encodings} |",
        *rows,
        "",
        "Languages: " + ", ".join(f"`{c}` {LANGUAGES[c].english_name}" for c in CODES) + ".",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(), end="")

"""SMS text: GSM-7 when possible, because one GSM-7 segment holds 160 characters and one
UCS-2 segment only 70. A single character outside GSM-7 (an accented á, a curly quote, a
non-breaking space) switches the whole message to UCS-2.

A language written in Latin letters whose accents can be dropped without losing a word
(Spanish, French, Portuguese, Somali) is sent in GSM-7, accents dropped, as texts in those
languages commonly are. Any other (Arabic, Chinese, Russian; Vietnamese, whose đ and tone
marks carry meaning) is sent as written, in UCS-2: transliterated, it would arrive as
question marks. Which is which is read from the language's own catalog
(`transliterates`), so a new language needs no code.
"""

import unicodedata
from collections.abc import Iterable

# The GSM 03.38 basic character set; the extension table below costs two septets each.
GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = set("^{}\\[~]|€\f")
SINGLE_GSM7 = 160
SINGLE_UCS2 = 70


def is_gsm7(text: str) -> bool:
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENDED for ch in text)


def gsm7_length(text: str) -> int:
    """Septets needed, counting extension characters twice."""
    return sum(2 if ch in GSM7_EXTENDED else 1 for ch in text)


def segments(text: str) -> int:
    """How many SMS segments the text takes (153 or 67 per part once concatenated)."""
    if is_gsm7(text):
        length = gsm7_length(text)
        return 1 if length <= SINGLE_GSM7 else -(-length // 153)
    length = len(text.encode("utf-16-le")) // 2
    return 1 if length <= SINGLE_UCS2 else -(-length // 67)


_REPLACEMENTS = str.maketrans(
    {
        "\u2019": "'",
        "\u2018": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u00a0": " ",
        "\u202f": " ",
        "\u2013": "-",
        "\u2014": "-",
        "\u2026": "...",
        "\u00ab": '"',
        "\u00bb": '"',
        "\u0153": "oe",
        "\u0152": "OE",
    }
)


def _transliterated(ch: str) -> str | None:
    """`ch` in GSM-7, without its accents if it must; None if it has no such form."""
    if ch in GSM7_BASIC or ch in GSM7_EXTENDED:
        return ch
    base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
    return base if base and all(c in GSM7_BASIC for c in base) else None


def to_gsm7(text: str) -> str:
    """Transliterate what GSM-7 lacks (á to a, curly quotes to straight) and keep the rest."""
    return "".join(_transliterated(ch) or "?" for ch in text.translate(_REPLACEMENTS))


def transliterates(texts: Iterable[str]) -> bool:
    """Whether every character of `texts` (a language's catalog) has a GSM-7 form."""
    return all(
        _transliterated(ch) is not None for text in texts for ch in text.translate(_REPLACEMENTS)
    )


def for_sms(text: str, gsm7: bool) -> str:
    """The text as it is sent: transliterated to GSM-7 when `gsm7`, else as written (UCS-2),
    with typographic spaces and dashes made plain either way."""
    return to_gsm7(text) if gsm7 else text.translate(_REPLACEMENTS)


def length(text: str) -> int:
    """Units the text takes in its encoding: septets (GSM-7) or UTF-16 code units (UCS-2)."""
    return gsm7_length(text) if is_gsm7(text) else len(text.encode("utf-16-le")) // 2


def room(text: str, parts: int) -> int:
    """Units `parts` segments hold in the encoding `text` needs."""
    if is_gsm7(text):
        return SINGLE_GSM7 if parts == 1 else 153 * parts
    return SINGLE_UCS2 if parts == 1 else 67 * parts

"""SMS text: GSM-7 when possible, because one GSM-7 segment holds 160 characters and one
UCS-2 segment only 70. A single character outside GSM-7 (an accented á, a curly quote, a
non-breaking space) switches the whole message to UCS-2."""

import unicodedata

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
    }
)


def to_gsm7(text: str) -> str:
    """Transliterate what GSM-7 lacks (á to a, curly quotes to straight) and keep the rest."""
    out = []
    for ch in text.translate(_REPLACEMENTS):
        if ch in GSM7_BASIC or ch in GSM7_EXTENDED:
            out.append(ch)
            continue
        base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
        out.append(base if base and all(c in GSM7_BASIC for c in base) else "?")
    return "".join(out)

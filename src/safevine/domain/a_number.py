"""Alien registration numbers (A-numbers): one canonical nine-digit form for every spelling."""

import re
import unicodedata

from safevine.domain.errors import FieldError

# Optional leading "A", then digit groups separated by single hyphens or spaces.
_SHAPE = re.compile(r"[Aa]?[- ]?[0-9]+(?:[- ][0-9]+)*")


def normalise_a_number(raw: str, field: str = "a_number") -> str:
    """Return the nine-digit canonical A-number (`012345678`).

    Accepts `A012345678`, `A-012-345-678`, `a 012 345 678` and eight-digit numbers, which
    are older A-numbers and are left-padded with a zero. Raises FieldError otherwise.
    """
    if len(raw) == 9 and raw.isascii() and raw.isdigit() and raw != "000000000":
        return raw  # already canonical, as most feeds send it
    # NFKC turns full-width digits (common from East Asian keyboards) into ASCII ones.
    text = unicodedata.normalize("NFKC", raw).strip()
    if not text:
        raise FieldError(field, "is empty; an A-number has 8 or 9 digits, e.g. A-012-345-678")
    if not _SHAPE.fullmatch(text):
        raise FieldError(
            field,
            "is not an A-number: use 8 or 9 digits, optionally after 'A' and with "
            "hyphens or spaces between groups, e.g. A-012-345-678",
        )
    digits = re.sub(r"[^0-9]", "", text)
    if len(digits) not in (8, 9):
        raise FieldError(field, f"has {len(digits)} digits; an A-number has 8 or 9")
    if set(digits) == {"0"}:
        raise FieldError(field, "is all zeros, which is never a real A-number")
    return digits.zfill(9)


def format_a_number(canonical: str) -> str:
    """Staff display form: `A-012-345-678`."""
    return f"A-{canonical[0:3]}-{canonical[3:6]}-{canonical[6:9]}"

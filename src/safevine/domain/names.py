"""Person names: the spelling kept for display, and a folded key used only for matching."""

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from safevine.domain.constructed import by_constructor
from safevine.domain.errors import FieldError
from safevine.domain.value_ranges import NAME_LENGTH

# Typographic apostrophes and dashes are typed interchangeably with ASCII ones.
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u00b4": "'"})
_DASHES = re.compile(r"[\u2010-\u2015\u2212]")
_SPACES = re.compile(r"\s+")


# Feeds repeat the same names endlessly; both functions are pure, so their answers are
# cached (a FieldError is raised afresh each time, never cached).
@lru_cache(maxsize=65_536)
def clean_name(raw: str, field: str) -> str:
    """Return the display spelling: NFKC, whitespace collapsed. Raises FieldError."""
    text = _SPACES.sub(" ", unicodedata.normalize("NFKC", raw)).strip()
    if not text:
        raise FieldError(field, "is empty")
    if len(text) > NAME_LENGTH:
        raise FieldError(field, f"is longer than {NAME_LENGTH} characters")
    if any(unicodedata.category(ch).startswith("C") for ch in text):
        raise FieldError(field, "contains control or invisible characters")
    if not any(ch.isalpha() for ch in text):
        raise FieldError(field, "has no letters")
    # The matching key is kept in a column as long as a name, and folding can lengthen a
    # name (`ß` is `ss`): such a key fits SQLite, which ignores lengths, but PostgreSQL
    # refuses it, so it is refused here, the same on both.
    if len(fold_name(text)) > NAME_LENGTH:
        raise FieldError(
            field, f"is longer than {NAME_LENGTH} characters as matched (ß counts as ss)"
        )
    return text


@lru_cache(maxsize=65_536)
def fold_name(text: str) -> str:
    """Matching key: case and diacritics folded, so `LÓPEZ` and `lopez` are equal.

    Exact matching happens on these keys; nothing partial or fuzzy is ever derived.
    """
    text = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES)
    text = _DASHES.sub("-", text).casefold()
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _SPACES.sub(" ", unicodedata.normalize("NFC", stripped)).strip()


@dataclass(frozen=True)
class PersonName:
    """A given and family name as received, with their matching keys."""

    given: str
    family: str

    def __reduce__(self) -> tuple[Any, ...]:
        return by_constructor(self)

    @property
    def key(self) -> tuple[str, str]:
        return fold_name(self.given), fold_name(self.family)

    @classmethod
    def parse(cls, given: str, family: str, field: str = "") -> "PersonName":
        prefix = f"{field}." if field else ""
        return cls(
            clean_name(given, f"{prefix}given_name"), clean_name(family, f"{prefix}family_name")
        )

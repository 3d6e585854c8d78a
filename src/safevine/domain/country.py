"""Countries of birth: ISO 3166-1 codes (pycountry), and their names in every language
safevine speaks (Babel's CLDR data), so a country may be typed as its reader writes it:
`MX`, `MEX`, `Mexico`, `México`, `Mexique`, `墨西哥`, `المكسيك`, `Мексика`."""

from functools import lru_cache

import pycountry
from babel.core import Locale

from safevine.domain.errors import FieldError
from safevine.domain.names import fold_name
from safevine.languages import CODES


@lru_cache(maxsize=16)
def _territories(language: str) -> dict[str, str]:
    return dict(Locale.parse(language).territories)


@lru_cache(maxsize=1)
def _name_index() -> dict[str, str]:
    """Folded names to alpha-2 codes: CLDR's name in each language, and pycountry's
    English short, official and common names ("Bolivia, Plurinational State of"). A
    name two countries share across languages names neither: it is refused, not guessed."""
    found: dict[str, set[str]] = {}
    codes = {str(country.alpha_2) for country in pycountry.countries}
    for language in CODES:
        for code, name in _territories(language).items():
            if code in codes:
                found.setdefault(fold_name(name), set()).add(code)
    for country in pycountry.countries:
        for attr in ("name", "official_name", "common_name"):
            english = getattr(country, attr, None)
            if english:
                found.setdefault(fold_name(str(english)), set()).add(str(country.alpha_2))
    return {name: next(iter(named)) for name, named in found.items() if len(named) == 1}


@lru_cache(maxsize=4_096)
def resolve_country(raw: str, field: str = "country_of_birth") -> str:
    """Return the ISO 3166-1 alpha-2 code for a code or a country's name in any of our
    languages.

    `MX`, `MEX`, `Mexico`, `México` and `mexico` all return `MX`. Raises FieldError.
    """
    text = raw.strip()
    if not text:
        raise FieldError(field, "is empty; give an ISO code (MX, MEX) or a name (Mexico, México)")
    # A code in capitals is a code; otherwise a name comes first, for a short name in one
    # language is a code in another ("Nga", Russia in Vietnamese, and NGA, Nigeria).
    as_code = _by_code(text) if text.isupper() else None
    found = as_code or _name_index().get(fold_name(text)) or _by_code(text)
    if found is None:
        raise FieldError(field, f"{text!r} is not an ISO 3166-1 country code or country name")
    return found


def _by_code(text: str) -> str | None:
    if not (text.isascii() and text.isalpha() and len(text) in (2, 3)):
        return None
    code = text.upper()
    found = (
        pycountry.countries.get(alpha_2=code)
        if len(code) == 2
        else pycountry.countries.get(alpha_3=code)
    )
    return str(found.alpha_2) if found is not None else None


def country_name(alpha_2: str, language: str = "en") -> str:
    """The country's name in `language`, as CLDR gives it (English where it has none)."""
    named = _territories(language).get(alpha_2) or _territories("en").get(alpha_2)
    if named:
        return str(named)
    country = pycountry.countries.get(alpha_2=alpha_2)
    return str(getattr(country, "common_name", None) or country.name) if country else alpha_2

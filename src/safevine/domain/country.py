"""Countries of birth: ISO 3166-1 codes and English or Spanish names, all through pycountry."""

import gettext
from functools import lru_cache

import pycountry

from safevine.domain.errors import FieldError
from safevine.domain.names import fold_name

LANGUAGES = ("en", "es")


@lru_cache(maxsize=4)
def _translation(language: str) -> gettext.NullTranslations:
    if language == "en":
        return gettext.NullTranslations()
    return gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=[language])


@lru_cache(maxsize=1)
def _name_index() -> dict[str, str]:
    """Folded English and Spanish names (short, official, common) to alpha-2 codes."""
    index: dict[str, str] = {}
    for country in pycountry.countries:
        english = [
            getattr(country, attr)
            for attr in ("name", "official_name", "common_name")
            if getattr(country, attr, None)
        ]
        for language in LANGUAGES:
            translate = _translation(language).gettext
            for name in english:
                index.setdefault(fold_name(translate(name)), country.alpha_2)
    return index


@lru_cache(maxsize=4_096)
def resolve_country(raw: str, field: str = "country_of_birth") -> str:
    """Return the ISO 3166-1 alpha-2 code for a code or an English or Spanish name.

    `MX`, `MEX`, `Mexico`, `México` and `mexico` all return `MX`. Raises FieldError.
    """
    text = raw.strip()
    if not text:
        raise FieldError(field, "is empty; give an ISO code (MX, MEX) or a name (Mexico, México)")
    if text.isascii() and text.isalpha() and len(text) in (2, 3):
        code = text.upper()
        found = (
            pycountry.countries.get(alpha_2=code)
            if len(code) == 2
            else pycountry.countries.get(alpha_3=code)
        )
        if found is not None:
            return str(found.alpha_2)
    by_name = _name_index().get(fold_name(text))
    if by_name is None:
        raise FieldError(field, f"{text!r} is not an ISO 3166-1 country code or country name")
    return by_name


def country_name(alpha_2: str, language: str = "en") -> str:
    """The country's common name in `language` ("en" or "es")."""
    country = pycountry.countries.get(alpha_2=alpha_2)
    if country is None:
        return alpha_2
    english = getattr(country, "common_name", None) or country.name
    return str(_translation(language).gettext(english))

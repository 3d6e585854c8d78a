"""Languages from gettext catalogs (`safevine.languages`), for pages, API errors and messages.

An explicit `lang` (query string or form field) wins; otherwise Accept-Language decides.
Catalogs are compiled to .mo at install (`make install`); a checkout that has only the
.po files compiles them in memory on first use, so a missing build step cannot leave a
page half in English.
"""

import gettext
import io
from functools import lru_cache

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from safevine.domain.sms_text import transliterates
from safevine.languages import CODES, LOCALES, SOURCE, supported

LANGUAGES = CODES
DEFAULT = SOURCE
DOMAIN = "messages"


def N_(message: str) -> str:  # noqa: N802 - the conventional gettext marker name
    """Marks a message for extraction where it is translated later."""
    return message


@lru_cache(maxsize=len(LANGUAGES))
def sms_in_gsm7(language: str) -> bool:
    """Whether texts in `language` go in GSM-7 (accents dropped) rather than UCS-2: when
    every character of its catalog has a GSM-7 form (`domain.sms_text`)."""
    if language not in LANGUAGES or language == DEFAULT:
        return True
    with (LOCALES / language / "LC_MESSAGES" / f"{DOMAIN}.po").open("rb") as handle:
        catalog = read_po(handle, locale=language, domain=DOMAIN)
    texts: list[str] = []
    for message in catalog:
        strings = message.string if isinstance(message.string, (tuple, list)) else [message.string]
        texts.extend(str(text) for text in strings if text)
    return transliterates(texts)


@lru_cache(maxsize=len(LANGUAGES))
def translations(language: str) -> gettext.NullTranslations:
    if language == DEFAULT:
        return gettext.NullTranslations()
    folder = LOCALES / language / "LC_MESSAGES"
    compiled = folder / f"{DOMAIN}.mo"
    if compiled.exists() and compiled.stat().st_mtime >= (folder / f"{DOMAIN}.po").stat().st_mtime:
        with compiled.open("rb") as handle:
            return Translations(handle, domain=DOMAIN)
    with (folder / f"{DOMAIN}.po").open("rb") as handle:
        catalog = read_po(handle, locale=language, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer, domain=DOMAIN)


# Clients send few distinct Accept-Language values; parsing one costs more than a search.
@lru_cache(maxsize=256)
def negotiate(explicit: str | None, accept_language: str | None) -> str:
    """The language to answer in: `explicit` if supported, else the best Accept-Language match."""
    if explicit in LANGUAGES:
        return str(explicit)
    chosen = supported(explicit) if explicit else None
    if chosen is not None:
        return chosen
    if not accept_language:
        return DEFAULT
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        language = supported(tag)
        if language is not None and quality > 0:
            ranked.append((-quality, position, language))
    return min(ranked)[2] if ranked else DEFAULT

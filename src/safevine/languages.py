"""The languages safevine speaks: English, the source, and one for each catalog under
`locales/`. Adding a language is adding its catalog; its name in itself and its writing
direction come from Babel's CLDR data.
"""

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from babel.core import Locale, UnknownLocaleError

LOCALES = Path(__file__).parent / "locales"
SOURCE = "en"
# Chinese is offered in Simplified characters: a reader of Traditional ones (Taiwan, Hong
# Kong, Macau) is better served by their next choice than by a script they may not read.
TRADITIONAL_CHINESE = frozenset({"Hant", "TW", "HK", "MO"})


@dataclass(frozen=True)
class Language:
    code: str
    # As its readers write it ("Español", "中文", "العربية"), for the language switch.
    name: str
    english_name: str
    direction: str  # "ltr" or "rtl"


def _discover() -> tuple[str, ...]:
    found = sorted(p.parent.parent.name for p in LOCALES.glob("*/LC_MESSAGES/messages.po"))
    return (SOURCE, *(code for code in found if code != SOURCE))


def _language(code: str) -> Language:
    locale = Locale.parse(code)
    own = locale.get_display_name(code) or code
    return Language(
        code,
        own[:1].upper() + own[1:],
        locale.get_display_name("en") or code,
        "rtl" if locale.character_order == "right-to-left" else "ltr",
    )


CODES: tuple[str, ...] = _discover()
LANGUAGES: dict[str, Language] = {code: _language(code) for code in CODES}


@lru_cache(maxsize=512)
def supported(tag: str) -> str | None:
    """The language we speak for a BCP 47 tag (`es-MX`, `zh-Hans-CN`, `pt_BR`), or None."""
    try:
        locale = Locale.parse(tag.strip().replace("-", "_"))
    except (ValueError, UnknownLocaleError, TypeError):
        return None
    if locale.language == "zh" and ({locale.script, locale.territory} & TRADITIONAL_CHINESE):
        return None
    return locale.language if locale.language in LANGUAGES else None


def direction(code: str) -> str:
    language = LANGUAGES.get(code)
    return language.direction if language else "ltr"

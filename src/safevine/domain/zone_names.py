"""A time zone's name in the reader's language, from Babel's CLDR data: its abbreviation
where the language has one ("MST" in English), otherwise its name in words ("hora estándar
de las Montañas Rocosas"), never a bare offset such as "-0700" that few readers can place."""

from datetime import datetime

from babel.dates import get_timezone_name

from safevine.domain.local_time import locale_of

# (zone, daylight time or not, language) -> name: Babel takes tens of microseconds a name,
# and a worker names the same few zones in every message.
_NAMES: dict[tuple[str, bool, str], str] = {}


def zone_name(moment: datetime, language: str) -> str:
    """The name of `moment`'s zone (a ZoneInfo-aware datetime) at that moment, standard or
    daylight time as it falls."""
    key = getattr(moment.tzinfo, "key", None)
    if key is None:
        return moment.tzname() or ""
    cached = (key, bool(moment.dst()), language)
    name = _NAMES.get(cached)
    if name is None:
        locale = locale_of(language)
        short = str(get_timezone_name(moment, "short", locale=locale) or "")
        offset = not short or short.startswith(("+", "-", "GMT", "UTC")) or short[0].isdigit()
        name = str(get_timezone_name(moment, "long", locale=locale)) if offset else short
        if len(_NAMES) < 4096:
            _NAMES[cached] = name
    return name

"""A public person as a search result, in the reader's language. Only what may be shown."""

from collections.abc import Callable
from datetime import datetime, time
from functools import lru_cache
from typing import Any

from babel.dates import get_datetime_format

from safevine.domain.country import country_name
from safevine.domain.local_time import facility_zone, locale_of, long_date, short_time
from safevine.domain.zone_names import zone_name
from safevine.i18n import N_
from safevine.store.public.lookup import PublicPerson

STATUS_TEXT = {
    "in_custody": N_("In custody"),
    "released": N_("Released"),
    "removed": N_("Removed from the United States"),
    "escaped": N_("Escaped from custody"),
    "deceased": N_("Died in custody"),
}


# The way date and time combine in the locale's long format, resolved once.
@lru_cache(maxsize=16)
def _date_and_time(language: str) -> str:
    return str(get_datetime_format("long", locale=locale_of(language))).replace("'", "")


def long_datetime(moment: datetime, language: str) -> str:
    """As `babel.dates.format_datetime(moment, "long", locale=language)` builds it: the
    locale's date-and-time pattern around the time and the long date; the time with its
    zone named in the reader's language (`domain.zone_names`), not as a bare offset."""
    clock = short_time(time(moment.hour, moment.minute), language)
    time_text = f"{clock} {zone_name(moment, language)}"
    day_text = long_date(moment.date(), language)
    return _date_and_time(language).replace("{0}", time_text).replace("{1}", day_text)


def moment_text(moment: datetime, zone_name: str | None, language: str) -> str:
    """A moment in a facility's local time, in the reader's language."""
    return long_datetime(moment.astimezone(facility_zone(zone_name)), language)


_country_name = lru_cache(maxsize=1024)(country_name)


def present(
    person: PublicPerson,
    language: str,
    gettext: Callable[[str], str],
    delayed: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The result as the API returns it and the page shows it; `delayed` is the notice
    for a facility whose information is late (`feed_delays.describe_delay`)."""
    zone = facility_zone(person.facility_time_zone)

    def when(moment: datetime) -> str:
        return long_datetime(moment.astimezone(zone), language)

    name = " ".join(p for p in (person.given_name, person.family_name) if p)
    return {
        "reference": person.public_ref,
        "name": name,
        "given_name": person.given_name,
        "family_name": person.family_name,
        "country_of_birth": person.country_of_birth,
        "country_of_birth_name": _country_name(person.country_of_birth or "", language),
        "custody_status": person.custody_state,
        "custody_status_text": gettext(STATUS_TEXT[person.custody_state]),
        "status_since": person.status_since.isoformat(),
        "status_since_text": long_date(person.status_since.astimezone(zone).date(), language),
        "facility": {
            "name": person.facility_name,
            "address": person.facility_address,
            "city": person.facility_city,
            "state": person.facility_state,
            "postal_code": person.facility_postal_code,
            "phone": person.facility_phone,
        },
        "last_updated": person.last_changed_at.isoformat(),
        "last_updated_text": when(person.last_changed_at),
        "information_delayed": delayed,
    }

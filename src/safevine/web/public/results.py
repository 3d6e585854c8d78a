"""A public person as a search result, in the reader's language. Only what may be shown."""

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import format_date, format_datetime

from safevine.domain.country import country_name
from safevine.i18n import N_
from safevine.store.public.lookup import PublicPerson

STATUS_TEXT = {
    "in_custody": N_("In custody"),
    "released": N_("Released"),
    "removed": N_("Removed from the United States"),
    "escaped": N_("Escaped from custody"),
    "deceased": N_("Died in custody"),
}


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def present(person: PublicPerson, language: str, gettext: Callable[[str], str]) -> dict[str, Any]:
    """The result as the API returns it and the page shows it."""
    zone = _zone(person.facility_time_zone)

    def when(moment: datetime) -> str:
        return format_datetime(moment.astimezone(zone), "long", locale=language)

    name = " ".join(p for p in (person.given_name, person.family_name) if p)
    return {
        "reference": person.public_ref,
        "name": name,
        "given_name": person.given_name,
        "family_name": person.family_name,
        "country_of_birth": person.country_of_birth,
        "country_of_birth_name": country_name(person.country_of_birth or "", language),
        "custody_status": person.custody_state,
        "custody_status_text": gettext(STATUS_TEXT[person.custody_state]),
        "status_since": person.status_since.isoformat(),
        "status_since_text": format_date(
            person.status_since.astimezone(zone), "long", locale=language
        ),
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
    }

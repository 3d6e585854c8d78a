"""What the public is told about delayed facilities: a notice on each search result at a
late, down or paused facility, and a page listing them all (as VINE's outage list does).

The list is read at most every `FRESH_FOR` seconds per process. Unlike anything about a
person (which is never cached: a protection takes effect at once), a facility's delay is
a facility-level fact that changes on the scale of hours, and reading it on every search
would add a query to the hottest path.
"""

import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from safevine.i18n import N_
from safevine.store.public.feed_delays import FacilityDelay, delays
from safevine.store.public.lookup import PublicPerson
from safevine.web.public.results import moment_text

FRESH_FOR = 30.0

HEALTH_TEXT = {
    "late": N_("Information is late"),
    "down": N_("Information is not being received"),
    "paused": N_("Information is paused"),
}
NOTICE = N_("Information from this facility may be out of date. Last received: %(when)s.")
NOTICE_UNKNOWN = N_("Information from this facility may be out of date.")


class DelayBoard:
    """The delayed facilities, refreshed when older than `FRESH_FOR` seconds."""

    def __init__(self, engine: Engine, clock: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        self.clock = clock
        self._read_at: float | None = None
        self._by_place: dict[tuple[str | None, ...], FacilityDelay] = {}
        self._all: list[FacilityDelay] = []
        self._lock = threading.Lock()

    def all(self) -> list[FacilityDelay]:
        self._refresh()
        return self._all

    def for_people(self, people: list[PublicPerson]) -> dict[str, FacilityDelay]:
        """The delay at each person's facility, by reference (none: not delayed)."""
        if not people:
            return {}
        self._refresh()
        found: dict[str, FacilityDelay] = {}
        for person in people:
            delay = self._by_place.get(
                (
                    person.facility_name,
                    person.facility_address,
                    person.facility_city,
                    person.facility_state,
                    person.facility_postal_code,
                )
            )
            if delay is not None and person.custody_state == "in_custody":
                found[person.public_ref] = delay
        return found

    def fresh(self) -> bool:
        """Whether `for_people` answers from memory, without reading the database."""
        read_at = self._read_at
        return read_at is not None and self.clock() - read_at < FRESH_FOR

    def _refresh(self) -> None:
        now = self.clock()
        if self._read_at is not None and now - self._read_at < FRESH_FOR:
            return
        with self._lock:
            if self._read_at is not None and now - self._read_at < FRESH_FOR:
                return
            with self.engine.connect() as connection:
                found = delays(connection)
            self._all = found
            self._by_place = {delay.place: delay for delay in found}
            self._read_at = now


def describe_delay(
    delay: FacilityDelay, language: str, gettext: Callable[[str], str]
) -> dict[str, Any]:
    """The notice as the API returns it and the page shows it."""
    when = (
        moment_text(delay.last_received, delay.facility_time_zone, language)
        if delay.last_received
        else None
    )
    return {
        "state": delay.health,
        "state_text": gettext(HEALTH_TEXT.get(delay.health, HEALTH_TEXT["late"])),
        "last_received": delay.last_received.isoformat() if delay.last_received else None,
        "last_received_text": when,
        "text": gettext(NOTICE) % {"when": when} if when else gettext(NOTICE_UNKNOWN),
    }

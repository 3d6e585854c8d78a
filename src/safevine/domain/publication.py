"""The publication rule: who the public may ever see. Everyone else is non-public."""

from datetime import date, datetime, timedelta

from safevine.domain.event_kinds import CustodyState
from safevine.domain.protection import Protection

ADULT_AGE = 18
DEFAULT_RETENTION_DAYS = 60


def age_on(date_of_birth: date, day: date) -> int:
    """Completed years on `day`; someone born on 29 February turns a year older on 1 March."""
    before_birthday = (day.month, day.day) < (date_of_birth.month, date_of_birth.day)
    return day.year - date_of_birth.year - int(before_birthday)


def is_public(
    *,
    protection: Protection,
    date_of_birth: date | None,
    state: CustodyState | None,
    left_custody_at: datetime | None,
    now: datetime,
    retention_days: int = DEFAULT_RETENTION_DAYS,
) -> bool:
    """True only for a cleared adult who is in custody or left it under `retention_days` ago.

    Fails closed: an unknown date of birth, no custody record or any protection other than
    `cleared` makes the person non-public. `now` must be timezone-aware (UTC).
    """
    if protection != Protection.CLEARED or date_of_birth is None or state is None:
        return False
    if age_on(date_of_birth, now.date()) < ADULT_AGE:
        return False
    if state == CustodyState.IN_CUSTODY:
        return True
    if left_custody_at is None:
        return False
    return now - left_custody_at < timedelta(days=retention_days)

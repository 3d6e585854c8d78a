"""How long safevine keeps what identifies someone: the periods, in one place.

Each period runs from the moment the data stops being needed: a person's from the end of
their public window (the publication rule's retention after leaving custody), a
registration's contact from the day it ended or expired, a message's details from its
last change, a rejected feed record's raw text and a feed's staged roster rows from the
day they were received, staff sign-in records from their last use. `safevine purge`
removes what is past its period (`actions.purge`); each period can be set by environment.
"""

import os
from dataclasses import dataclass
from datetime import datetime, timedelta

# Longer than this is not retention but keeping (a century).
MOST_DAYS = 36_500


@dataclass(frozen=True)
class RetentionPeriods:
    # A person's names, aliases, date of birth and A-number, after their public window.
    person_days: int = 30
    # An ended or never-confirmed registration's contact (ciphertext, blind index, hint).
    contact_days: int = 7
    # A finished message's content and provider ids (its counts stay for the report).
    message_days: int = 30
    # A rejected feed record's raw text (its line, field and reason stay), and a roster's
    # staged rows.
    feed_days: int = 30
    # Staff sessions and sign-in attempts.
    staff_days: int = 90

    @classmethod
    def from_env(cls) -> "RetentionPeriods":
        """The defaults, each overridden by its SAFEVINE_KEEP_* variable (whole days)."""

        def days(name: str, default: int) -> int:
            raw = os.environ.get(name, "").strip()
            if not raw:
                return default
            if not raw.isdigit() or not 1 <= int(raw) <= MOST_DAYS:
                raise ValueError(
                    f"{name} must be a whole number of days, 1 to {MOST_DAYS}, not {raw!r}"
                )
            return int(raw)

        base = cls()
        return cls(
            person_days=days("SAFEVINE_KEEP_PERSON_DAYS", base.person_days),
            contact_days=days("SAFEVINE_KEEP_CONTACT_DAYS", base.contact_days),
            message_days=days("SAFEVINE_KEEP_MESSAGE_DAYS", base.message_days),
            feed_days=days("SAFEVINE_KEEP_FEED_DAYS", base.feed_days),
            staff_days=days("SAFEVINE_KEEP_STAFF_DAYS", base.staff_days),
        )


@dataclass(frozen=True)
class Cutoffs:
    """Everything that stopped being needed before these moments is purged."""

    # Persons who left custody before this (their public window plus `person_days` ago).
    left_custody: datetime
    contact: datetime
    message: datetime
    feed: datetime
    staff: datetime


def cutoffs(periods: RetentionPeriods, public_days: int, now: datetime) -> Cutoffs:
    """`public_days`: the publication rule's retention after leaving custody."""
    return Cutoffs(
        left_custody=now - timedelta(days=public_days + periods.person_days),
        contact=now - timedelta(days=periods.contact_days),
        message=now - timedelta(days=periods.message_days),
        feed=now - timedelta(days=periods.feed_days),
        staff=now - timedelta(days=periods.staff_days),
    )

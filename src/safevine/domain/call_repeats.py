"""When a call about a person is placed again, in one place.

A call the registrant has not confirmed with their PIN is repeated, as VINE does: every
30 minutes when nobody answered (no answer, busy, an answering machine), every 2 hours
when someone answered but entered no PIN, for up to 24 hours from the first call. Each is
overridable by environment. Quiet hours hold a repeat like any message (the dispatcher's
gate); an acknowledgement, a protection or the registration ending stops them.
"""

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class CallOutcome(StrEnum):
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    MACHINE = "machine"  # an answering machine took it
    ANSWERED = "answered"  # a person answered and entered no PIN
    ACKNOWLEDGED = "acknowledged"  # the PIN was entered
    FAILED = "failed"  # the provider could not place it


# The provider's final call statuses (Twilio's words); the others say it is under way.
FINAL_STATUSES = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})


def outcome_of(status: str, answered_by: str | None) -> CallOutcome | None:
    """A finished call's outcome from the provider's status and who it says answered;
    None while the call is still under way."""
    if status not in FINAL_STATUSES:
        return None
    if status == "busy":
        return CallOutcome.BUSY
    if status in ("no-answer", "canceled"):
        return CallOutcome.NO_ANSWER
    if status == "failed":
        return CallOutcome.FAILED
    if answered_by and answered_by.startswith(("machine", "fax")):
        return CallOutcome.MACHINE
    return CallOutcome.ANSWERED


@dataclass(frozen=True)
class RepeatRules:
    unanswered_every: timedelta = timedelta(minutes=30)
    answered_every: timedelta = timedelta(hours=2)
    for_at_most: timedelta = timedelta(hours=24)

    @classmethod
    def from_env(cls) -> "RepeatRules":
        def minutes(name: str, default: timedelta) -> timedelta:
            raw = os.environ.get(name, "").strip()
            if not raw:
                return default
            if not raw.isdigit() or not 1 <= int(raw) <= 7 * 24 * 60:
                raise ValueError(f"{name} must be whole minutes from 1 to 10080, not {raw!r}")
            return timedelta(minutes=int(raw))

        return cls(
            minutes("SAFEVINE_CALL_REPEAT_MINUTES", cls.unanswered_every),
            minutes("SAFEVINE_CALL_REPEAT_ANSWERED_MINUTES", cls.answered_every),
            minutes("SAFEVINE_CALL_REPEAT_FOR_MINUTES", cls.for_at_most),
        )

    def next_call(
        self, outcome: CallOutcome, first_call: datetime, now: datetime
    ) -> datetime | None:
        """When to call again after a call ended so; None: no more calls."""
        if outcome in (CallOutcome.ACKNOWLEDGED, CallOutcome.FAILED):
            return None
        wait = self.answered_every if outcome == CallOutcome.ANSWERED else self.unanswered_every
        at = now + wait
        return at if at <= first_call + self.for_at_most else None


def reached(outcomes: list[CallOutcome], allow_voicemail: bool) -> bool:
    """Whether the calls reached the registrant (a person answered, or the message was
    left on their machine as they allowed), though nobody entered the PIN."""
    return CallOutcome.ANSWERED in outcomes or (allow_voicemail and CallOutcome.MACHINE in outcomes)

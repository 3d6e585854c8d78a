"""Protection states and the rule for what a feed may change: it may protect, never unprotect."""

from enum import StrEnum


class Protection(StrEnum):
    UNSCREENED = "unscreened"
    PROTECTED = "protected"
    CLEARED = "cleared"


def feed_protection_change(current: Protection, asserted: Protection) -> Protection | None:
    """The protection a feed's assertion leads to, or None when nothing changes.

    `protected` always wins at once. A feed may clear an unscreened person (a screening
    result) but never a protected one: that takes a staff decision with a reason.
    """
    if asserted == current:
        return None
    if asserted == Protection.PROTECTED:
        return Protection.PROTECTED
    if asserted == Protection.CLEARED and current == Protection.UNSCREENED:
        return Protection.CLEARED
    return None

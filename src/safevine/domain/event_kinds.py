"""Custody event kinds, the custody state each leaves a person in, and release reasons."""

from enum import StrEnum


class EventKind(StrEnum):
    BOOKED = "booked"
    TRANSFERRED = "transferred"
    RELEASED = "released"
    REMOVED = "removed"
    ESCAPED = "escaped"
    RETURNED = "returned"
    DIED = "died"
    HEARING_SCHEDULED = "hearing_scheduled"


class CustodyState(StrEnum):
    IN_CUSTODY = "in_custody"
    RELEASED = "released"
    REMOVED = "removed"
    ESCAPED = "escaped"
    DECEASED = "deceased"


class ReleaseReason(StrEnum):
    """Why a person was released. Feeds map their own codes onto these."""

    BOND = "bond"
    PAROLE = "parole"
    SUPERVISION = "supervision"
    RECOGNIZANCE = "recognizance"
    SENTENCE_COMPLETED = "sentence_completed"
    CASE_TERMINATED = "case_terminated"
    RELIEF_GRANTED = "relief_granted"
    OTHER = "other"
    UNKNOWN = "unknown"


# A hearing changes nothing about where a person is, so it has no state.
_STATE_AFTER: dict[EventKind, CustodyState | None] = {
    EventKind.BOOKED: CustodyState.IN_CUSTODY,
    EventKind.TRANSFERRED: CustodyState.IN_CUSTODY,
    EventKind.RETURNED: CustodyState.IN_CUSTODY,
    EventKind.RELEASED: CustodyState.RELEASED,
    EventKind.REMOVED: CustodyState.REMOVED,
    EventKind.ESCAPED: CustodyState.ESCAPED,
    EventKind.DIED: CustodyState.DECEASED,
    EventKind.HEARING_SCHEDULED: None,
}

# Kinds whose facility is where the person now is, so a facility is required.
KINDS_NEEDING_FACILITY = frozenset({EventKind.BOOKED, EventKind.TRANSFERRED, EventKind.RETURNED})


def state_after(kind: EventKind) -> CustodyState | None:
    """The custody state an event of `kind` leaves a person in; None if it changes nothing."""
    return _STATE_AFTER[kind]

"""The roster diff: what a snapshot says happened since the last known state, as events.

Someone listed who was not in custody was booked; someone listed who was in custody
elsewhere was transferred; someone in custody at a listed facility who is not listed left
custody (reason unknown). Event ids are derived, so applying a snapshot twice is a no-op.
"""

import hashlib
from datetime import datetime

from safevine.domain.custody_event import CustodyEventInput, PersonFacts
from safevine.domain.custody_status import Placement
from safevine.domain.event_kinds import CustodyState, EventKind, ReleaseReason


def roster_event_id(facility_code: str, taken_at: datetime, a_number: str, kind: EventKind) -> str:
    """Stable id for a derived event; a hash, so no identifier shows in the id itself."""
    basis = f"{facility_code}|{taken_at.isoformat()}|{a_number}|{kind.value}"
    return "roster-" + hashlib.sha256(basis.encode()).hexdigest()[:40]


def arrival(
    person: PersonFacts, facility_code: str, taken_at: datetime, current: Placement | None
) -> CustodyEventInput | None:
    """The event for someone listed at `facility_code`, or None if nothing changed.

    A placement newer than the snapshot wins: the snapshot cannot speak for later events.
    """
    if current is not None and current.since > taken_at:
        return None
    if current is not None and current.state == CustodyState.IN_CUSTODY:
        if current.facility_code == facility_code:
            return None
        kind = EventKind.TRANSFERRED
        details = {"from_facility_code": current.facility_code} if current.facility_code else {}
    else:
        kind, details = EventKind.BOOKED, {}
    return CustodyEventInput(
        event_id=roster_event_id(facility_code, taken_at, person.a_number, kind),
        kind=kind,
        occurred_at=taken_at,
        person=person,
        facility_code=facility_code,
        details=details,
    )


def departure(
    a_number: str, facility_code: str, taken_at: datetime, in_custody_since: datetime
) -> CustodyEventInput | None:
    """The event for someone in custody at a listed facility but absent from its list."""
    if in_custody_since > taken_at:
        return None
    kind = EventKind.RELEASED
    return CustodyEventInput(
        event_id=roster_event_id(facility_code, taken_at, a_number, kind),
        kind=kind,
        occurred_at=taken_at,
        person=PersonFacts(a_number),
        facility_code=facility_code,
        details={"reason": ReleaseReason.UNKNOWN.value},
    )


# The fingerprint of a facility's list: who is listed there, in any order, to recognise the
# same snapshot sent again. It is built from the count, the sum and the sum of squares of
# the A-numbers (as numbers) as the file streams by, with nothing sorted or kept: any
# change of one or two people changes it, and more changes leave it the same only when
# contrived to. "m" marks this form: fingerprints of snapshots applied by earlier versions
# (a hash of the sorted list) have no such prefix.
EMPTY_FINGERPRINT = hashlib.sha256().hexdigest()
FINGERPRINT_PREFIX = "m"


def fingerprint(listed: int, total: int, squares: int) -> str:
    """The fingerprint of `listed` A-numbers that add up to `total`, and their squares to
    `squares`."""
    if listed == 0:
        return EMPTY_FINGERPRINT
    basis = f"{listed}:{total}:{squares}".encode()
    return FINGERPRINT_PREFIX + hashlib.sha256(basis).hexdigest()[1:]


def is_legacy_fingerprint(digest: str) -> bool:
    """A fingerprint from before this form, which cannot be compared with one now."""
    return digest != EMPTY_FINGERPRINT and not digest.startswith(FINGERPRINT_PREFIX)

"""Current custody status: the newest status-changing event wins, in any arrival order."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from safevine.domain.event_kinds import CustodyState, EventKind, state_after

# Ordering key: when it happened, then the source's sequence, then the event id so that
# two events tied on both still order the same way on every run and every machine.
OrderKey = tuple[datetime, int, str]


@dataclass(frozen=True)
class StatusEvent:
    event_id: str
    kind: EventKind
    occurred_at: datetime
    sequence: int
    facility_code: str | None

    @property
    def order_key(self) -> OrderKey:
        return (self.occurred_at, self.sequence, self.event_id)


@dataclass(frozen=True)
class CustodyStatus:
    state: CustodyState
    facility_code: str | None
    since: datetime
    event_id: str
    order_key: OrderKey

    @property
    def left_custody_at(self) -> datetime | None:
        return None if self.state == CustodyState.IN_CUSTODY else self.since


def status_from(event: StatusEvent) -> CustodyStatus | None:
    """The status `event` alone would set; None for kinds that move nobody."""
    state = state_after(event.kind)
    if state is None:
        return None
    return CustodyStatus(
        state, event.facility_code, event.occurred_at, event.event_id, event.order_key
    )


def advance(current: CustodyStatus | None, event: StatusEvent) -> CustodyStatus | None:
    """The status after `event` arrives: a late event never overrides a newer one."""
    candidate = status_from(event)
    if candidate is None:
        return current
    if current is None or candidate.order_key > current.order_key:
        return candidate
    return current


def derive_status(events: Iterable[StatusEvent]) -> CustodyStatus | None:
    """Status from a person's whole history; the same whatever order `events` come in."""
    status: CustodyStatus | None = None
    for event in events:
        status = advance(status, event)
    return status


@dataclass(frozen=True)
class Placement:
    """Where the store says a person is now, and since when."""

    state: CustodyState
    facility_code: str | None
    since: datetime

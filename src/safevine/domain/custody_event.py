"""A validated custody event and the facts about its person, as every feed format yields them."""

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from safevine.domain.constructed import by_constructor
from safevine.domain.event_kinds import EventKind
from safevine.domain.names import PersonName
from safevine.domain.protection import Protection


@dataclass(frozen=True)
class PersonFacts:
    """What a feed says about a person. Only the A-number is always known."""

    a_number: str
    name: PersonName | None = None
    aliases: tuple[PersonName, ...] = ()
    date_of_birth: date | None = None
    country_of_birth: str | None = None
    # A protection the feed asserts; None when it says nothing.
    protection: Protection | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        return by_constructor(self)


@dataclass(frozen=True)
class CustodyEventInput:
    """One custody event ready to store: identifiers checked, times aware, details typed."""

    event_id: str
    kind: EventKind
    occurred_at: datetime
    person: PersonFacts
    facility_code: str | None = None
    sequence: int = 0
    details: dict[str, Any] = field(default_factory=dict)

    def __reduce__(self) -> tuple[Any, ...]:
        return by_constructor(self)

"""A person, as staff act on them: view (audited), protect, and clear (one person asks,
a different one confirms, or one alone when two-person clear is off)."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from safevine.actions.actor import Actor
from safevine.domain.a_number import format_a_number, normalise_a_number
from safevine.domain.errors import NotFoundError
from safevine.store.records import protection
from safevine.store.records.audit import append
from safevine.store.records.person_view import StaffPersonView, staff_view
from safevine.store.records.persons import person_ids_by_a_number


@dataclass(frozen=True)
class Found:
    id: int
    a_number: str  # canonical


# A-numbers are named by the field they came in: `a_number` in the API, `A-NUMBER` on the
# command line.
FIELD = "a_number"


def _nobody(canonical: str) -> NotFoundError:
    return NotFoundError(f"no person with A-number {format_a_number(canonical)}")


def find(connection: Connection, a_number: str, field: str = FIELD) -> Found:
    """The person with this A-number, as typed (spaces, dashes, an `A`); FieldError if it
    is not one, NotFoundError if nobody has it."""
    canonical = normalise_a_number(a_number, field)
    found = person_ids_by_a_number(connection, [canonical])
    if canonical not in found:
        raise _nobody(canonical)
    return Found(found[canonical], canonical)


def view(
    connection: Connection, actor: Actor, a_number: str, now: datetime, field: str = FIELD
) -> StaffPersonView:
    canonical = normalise_a_number(a_number, field)
    seen = staff_view(connection, canonical)
    if seen is None:
        raise _nobody(canonical)
    append(
        connection,
        actor=actor.name,
        action="view_person",
        target=f"person:{seen.id}",
        reason=None,
        at=now,
    )
    return seen


def protect(
    connection: Connection,
    actor: Actor,
    a_number: str,
    reason: str,
    now: datetime,
    field: str = FIELD,
) -> tuple[Found, bool]:
    """Protected at once, everywhere, their queued messages cancelled; False when they
    already were."""
    person = find(connection, a_number, field)
    changed = protection.protect(
        connection, person.id, actor=actor.name, source="staff", reason=reason, now=now
    )
    return person, changed


@dataclass(frozen=True)
class ClearOutcome:
    person: Found
    # With two-person clear: the request waiting for a second person; otherwise None.
    request: protection.ClearRequest | None
    changed: bool


def clear(
    connection: Connection,
    actor: Actor,
    a_number: str,
    reason: str,
    now: datetime,
    *,
    two_person: bool,
    field: str = FIELD,
) -> ClearOutcome:
    person = find(connection, a_number, field)
    if two_person:
        asked = protection.request_clear(
            connection, person.id, actor=actor.name, reason=reason, now=now
        )
        return ClearOutcome(person, asked, False)
    changed = protection.clear(connection, person.id, actor=actor.name, reason=reason, now=now)
    return ClearOutcome(person, None, changed)


def confirm_clear(connection: Connection, actor: Actor, request_id: int, now: datetime) -> int:
    """The second person's confirmation; the person id. NotAllowedError for the one who asked."""
    return protection.confirm_clear(connection, request_id, actor=actor.name, now=now)

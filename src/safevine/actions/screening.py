"""Screening: a person not yet screened is hidden until staff decide. `cleared` makes them
public at once (by the publication rule, in the same transaction); `protected` hides them
for good and cancels everything queued about them.

Clearing an unscreened person is one screener's decision; clearing a *protected* person
is not screening and takes two people (`actions.persons.clear`).
"""

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Connection, select

from safevine.actions.actor import Actor
from safevine.domain.errors import ConflictError, FieldError, NotFoundError, RefusedError
from safevine.domain.protection import Protection
from safevine.domain.value_ranges import REASON_LENGTH, check_free_text
from safevine.store.decoy import DECOY_PERSON_ID
from safevine.store.records import protection
from safevine.store.schema import persons


class Decision(StrEnum):
    CLEARED = "cleared"
    PROTECTED = "protected"


def decision(value: str) -> Decision:
    try:
        return Decision(value)
    except ValueError:
        raise FieldError("decision", "must be cleared or protected") from None


def screen(
    connection: Connection,
    actor: Actor,
    person_id: int,
    chosen: Decision,
    reason: str,
    now: datetime,
) -> None:
    """One person screened, audited. ConflictError when they were screened already (a
    protected person is cleared only by two people; protecting anyone is `protect`)."""
    reason = check_free_text(reason, "reason", REASON_LENGTH).strip()
    if not reason:
        raise FieldError("reason", "is required: say what the decision rests on")
    found = connection.execute(
        select(persons.c.protection).where(persons.c.id == person_id)
    ).scalar()
    if found is None or person_id == DECOY_PERSON_ID:
        raise NotFoundError(f"no person {person_id}")
    if found != Protection.UNSCREENED.value:
        raise ConflictError(f"person {person_id} was already screened ({found})")
    if chosen == Decision.PROTECTED:
        protection.protect(
            connection, person_id, actor=actor.name, source="screening", reason=reason, now=now
        )
    else:
        protection.clear(connection, person_id, actor=actor.name, reason=reason, now=now)


@dataclass
class Screened:
    """A bulk screening's outcome: who was screened, and who was not and why."""

    done: list[int] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)


def screen_many(
    connection: Connection,
    actor: Actor,
    person_ids: list[int],
    chosen: Decision,
    reason: str,
    now: datetime,
) -> Screened:
    """Each person screened on their own (a savepoint each, each audited): one who cannot
    be is named with the reason, and the others are screened all the same."""
    outcome = Screened()
    for person_id in dict.fromkeys(person_ids):
        try:
            with connection.begin_nested():
                screen(connection, actor, person_id, chosen, reason, now)
        except FieldError:
            raise  # the reason is the same for all: nobody is screened without one
        except RefusedError as error:
            outcome.refused.append((person_id, str(error)))
        else:
            outcome.done.append(person_id)
    return outcome

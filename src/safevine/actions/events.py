"""A custody event, as staff act on it: retract one recorded in error (audited, with a
reason; its registrants who were told about it are sent a correction)."""

from datetime import datetime

from sqlalchemy import Connection

from safevine.actions.actor import Actor
from safevine.domain.errors import FieldError
from safevine.domain.value_ranges import (
    IDENTIFIER_LENGTH,
    REASON_LENGTH,
    check_free_text,
    check_text,
)
from safevine.store.records import retraction
from safevine.store.records.retraction import Retraction

# Named by the field they came in: `event_id` and `reason` in the API; the command line
# passes its own names (`EVENT_ID`, `--reason`).
FIELD = "event_id"
REASON = "reason"


def retract(
    connection: Connection,
    actor: Actor,
    event_id: str,
    reason: str,
    now: datetime,
    field: str = FIELD,
    reason_field: str = REASON,
) -> Retraction:
    """Retract the event with this event id (the feed's, as `person show` lists it):
    FieldError for an event id or reason that cannot be accepted, NotFoundError if no
    event has the id, ConflictError if it was retracted already; nothing changes then."""
    wanted = event_id.strip()
    if not wanted:
        raise FieldError(
            field, "is required: the event id the feed sent, as `person show` lists it"
        )
    check_text(wanted, field, IDENTIFIER_LENGTH)
    why = reason.strip()
    if not why:
        raise FieldError(
            reason_field, "is required: say why the event is retracted (it is kept with it)"
        )
    check_free_text(why, reason_field, REASON_LENGTH)
    return retraction.retract_event(connection, wanted, actor=actor.name, reason=why, now=now)

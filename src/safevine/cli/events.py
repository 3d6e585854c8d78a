"""`safevine event`: a custody event, as staff act on it (retract one recorded in error)."""

import json
from datetime import UTC, datetime
from typing import Annotated

import typer

from safevine.actions import events as event_actions
from safevine.cli.common import ActorOption, JsonFlag, Reason, app, out, run, store, who

event_app = typer.Typer(help="Custody events: retract one recorded in error.", no_args_is_help=True)
app.add_typer(event_app, name="event")

EVENT_ID = "EVENT_ID"  # how the event id argument is named in an error
EventId = Annotated[
    str,
    typer.Argument(
        help="The event's id, as its feed sent it (`safevine person show` lists them).",
        show_default=False,
    ),
]


def _status(state: str | None, facility: str | None) -> str:
    if state is None:
        return "no custody status"
    if not facility:
        return state
    return f"{state} at {facility}" if state == "in_custody" else f"{state}, facility {facility}"


@event_app.command("retract")
def retract_cmd(
    event_id: EventId, reason: Reason, actor: ActorOption = None, as_json: JsonFlag = False
) -> None:
    """Retract a custody event recorded in error (a reason is required; audited).

    The event stays in the history, marked retracted, and counts for nothing: the
    person's status is derived again without it, its unsent messages are cancelled, and
    every registrant it already reached is sent a correction. A feed that sends its id
    again is refused.
    """

    def action() -> None:
        with store() as engine, engine.begin() as connection:
            done = event_actions.retract(
                connection,
                who(actor),
                event_id,
                reason,
                datetime.now(UTC),
                field=EVENT_ID,
                reason_field="--reason",
            )
        if as_json:
            out.print_json(json.dumps(done.as_json()))
            return
        out.print(
            f"event {done.event_id!r} ({done.kind}) retracted: person {done.person_id} is now "
            f"{_status(done.state, done.facility_code)}; it was "
            f"{_status(done.state_before, done.facility_before)}",
            highlight=False,
        )
        out.print(
            f"{done.cancelled} unsent messages cancelled; {done.corrections} corrections queued"
            f" for the {done.told} active registrations a message about it had reached",
            highlight=False,
        )
        if done.corrections < done.told:
            out.print(
                "(a correction goes only to an active registration, and only about a "
                "person who is public)",
                highlight=False,
            )

    run(action)

"""`safevine feed-health`: every facility's feed health; evaluating it on a schedule (when
the staff service's clock is off), holding a facility on purpose, setting its cadence."""

import json
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from safevine.actions import feed_health as feed_actions
from safevine.cli.common import (
    ActorOption,
    JsonFlag,
    Reason,
    app,
    load_settings,
    out,
    run,
    store,
    who,
)
from safevine.domain.feed_health import Health

feed_app = typer.Typer(
    help="Feed health: which facilities have gone silent, and staff holds.",
    no_args_is_help=True,
)
app.add_typer(feed_app, name="feed-health")

Code = Annotated[str, typer.Argument(help="The facility's code.", show_default=False)]


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M}" if moment else "never"


@feed_app.command("evaluate")
def evaluate_cmd(as_json: JsonFlag = False) -> None:
    """Judge every facility now: record changes, alert operations, notify registrants."""

    def action() -> None:
        settings = load_settings()
        with store() as engine:
            result = feed_actions.evaluate(engine, settings, datetime.now(UTC))
        changes = [
            {"facility": c.code, "from": c.before.value if c.before else None, "to": c.after.value}
            for c in result.changes
        ]
        if as_json:
            out.print_json(json.dumps({"changes": changes}))
            return
        for change in changes:
            out.print(f"{change['facility']}: {change['from'] or 'new'} -> {change['to']}")
        out.print(f"{len(changes)} changes")

    run(action)


@feed_app.command("list")
def list_cmd(as_json: JsonFlag = False) -> None:
    """Every facility as last evaluated, worst first (times in UTC)."""
    from safevine.store.records import feed_health

    def action() -> None:
        with store() as engine, engine.connect() as connection:
            rows = feed_health.listing(connection)
        if as_json:
            out.print_json(json.dumps([f.as_json() for f in rows]))
            return
        table = Table("facility", "state", "since", "last received", "cadence (min)", "hold")
        for f in rows:
            cadence = f"{f.roster_every_minutes}/{f.events_every_minutes}"
            table.add_row(
                f.code,
                f.state,
                _when(f.since),
                _when(f.last_data),
                cadence + (" learned" if f.cadence_learned else ""),
                f.held_reason or "",
            )
        out.print(table)

    run(action)


@feed_app.command("hold")
def hold_cmd(
    code: Code,
    reason: Reason,
    closed: Annotated[bool, typer.Option("--closed", help="Closed rather than paused.")] = False,
    actor: ActorOption = None,
) -> None:
    """Pause (or close) a facility on purpose: no alert and no notice while it lasts."""
    held = Health.CLOSED if closed else Health.PAUSED

    def action() -> None:
        with store() as engine, engine.begin() as connection:
            feed_actions.hold(connection, who(actor), code, held, reason, datetime.now(UTC))
        out.print(f"{code} {held.value}")

    run(action)


@feed_app.command("lift")
def lift_cmd(code: Code, reason: Reason, actor: ActorOption = None) -> None:
    """End a hold: the next evaluation judges the facility again."""

    def action() -> None:
        with store() as engine, engine.begin() as connection:
            feed_actions.hold(connection, who(actor), code, None, reason, datetime.now(UTC))
        out.print(f"{code}: hold lifted")

    run(action)


Hours = Annotated[float | None, typer.Option(min=0.0, help="Hours.")]


@feed_app.command("cadence")
def cadence_cmd(
    code: Code,
    roster_every: Hours = None,
    events_every: Hours = None,
    down_after: Hours = None,
    learn: Annotated[
        bool, typer.Option("--learn", help="Forget set cadences: learn them from history.")
    ] = False,
    actor: ActorOption = None,
) -> None:
    """Set how often a facility is expected to send rosters and events, and after how
    long a silence it is down."""
    hours: dict[str, float | None] = (
        {"roster_every": None, "events_every": None, "down_after": None} if learn else {}
    )
    for key, value in (
        ("roster_every", roster_every),
        ("events_every", events_every),
        ("down_after", down_after),
    ):
        if value is not None:
            hours[key] = value

    def action() -> None:
        with store() as engine, engine.begin() as connection:
            feed_actions.set_cadence(connection, who(actor), code, hours, datetime.now(UTC))
        out.print(f"{code}: cadence set")

    run(action)

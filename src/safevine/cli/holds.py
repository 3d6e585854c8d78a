"""`safevine holds`: batches held for review."""

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from safevine.actions import holds as hold_actions
from safevine.cli.common import (
    ActorOption,
    JsonFlag,
    RowIdArg,
    UserError,
    app,
    out,
    run,
    store,
    who,
)
from safevine.store.records.holds import Hold

holds_app = typer.Typer(
    help="Batches held for review because they looked like data accidents.", no_args_is_help=True
)
app.add_typer(holds_app, name="holds")


def _hold_json(hold: Hold) -> dict[str, Any]:
    return {
        "id": hold.id,
        "batch": hold.batch_id,
        "batch_kind": hold.batch_kind,
        "source": hold.source,
        "state": hold.state,
        "rule": hold.rule,
        "created_at": hold.created_at.isoformat(),
        "age_seconds": round((datetime.now(UTC) - hold.created_at).total_seconds()),
        "decided_at": hold.decided_at.isoformat() if hold.decided_at else None,
        "decided_by": hold.decided_by,
        "note": hold.note,
        **hold.detail,
    }


@holds_app.command("list")
def holds_list(
    all_holds: Annotated[bool, typer.Option("--all", help="Decided ones too.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Held batches, oldest first, with the rule each tripped."""
    from safevine.store.records import holds

    def action() -> None:
        with store() as engine, engine.connect() as connection:
            rows = holds.listing(connection, only_open=not all_holds)
        if as_json:
            out.print_json(json.dumps([_hold_json(h) for h in rows]))
            return
        table = Table("hold", "batch", "kind", "state", "held since (UTC)", "rule")
        for h in rows:
            table.add_row(
                str(h.id),
                str(h.batch_id),
                h.batch_kind,
                h.state,
                f"{h.created_at:%Y-%m-%d %H:%M}",
                h.rule,
            )
        out.print(table)

    run(action)


@holds_app.command("show")
def holds_show(hold_id: RowIdArg) -> None:
    """One hold: counts by kind and facility, a sample of its changes (internal ids)."""
    from safevine.store.records import holds

    def action() -> None:
        with store() as engine, engine.connect() as connection:
            hold = holds.get(connection, hold_id)
            if hold is not None and hold.state == "held":
                hold = replace(hold, detail=holds.batch_detail(connection, hold.batch_id))
        if hold is None:
            raise UserError(f"no hold {hold_id}")
        out.print_json(json.dumps(_hold_json(hold)))

    run(action)


@holds_app.command("release")
def holds_release(hold_id: RowIdArg, actor: ActorOption = None) -> None:
    """The batch was real: its notifications go out, each once."""

    def action() -> None:
        with store() as engine, engine.begin() as connection:
            queued = hold_actions.release(connection, who(actor), hold_id, datetime.now(UTC))
        out.print(f"hold {hold_id} released: {queued} notifications queued")

    run(action)


@holds_app.command("discard")
def holds_discard(hold_id: RowIdArg, actor: ActorOption = None) -> None:
    """The batch was an accident: its changes are reverted and no alert is ever sent."""

    def action() -> None:
        with store() as engine, engine.begin() as connection:
            restored = hold_actions.discard(connection, who(actor), hold_id, datetime.now(UTC))
        out.print(f"hold {hold_id} discarded: {restored} statuses restored, no alert sent")

    run(action)

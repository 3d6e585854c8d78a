"""`safevine purge`: remove what is past its retention period (`actions.purge`)."""

import json
from datetime import UTC, datetime
from typing import Annotated

import typer

from safevine.cli.common import ActorOption, JsonFlag, app, out, run, serving_settings, store, who


@app.command("purge")
def purge_cmd(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be purged; change nothing.")
    ] = False,
    as_json: JsonFlag = False,
    actor: ActorOption = None,
) -> None:
    """Remove what is past its retention period (SAFEVINE_KEEP_*), audited; the worker
    does this every SAFEVINE_PURGE_EVERY_HOURS."""
    from safevine.actions.purge import purge

    def action() -> None:
        # The keyed hash of a purged A-number must be made with the services' lasting key.
        settings = serving_settings()
        with store() as engine:
            done = purge(
                engine,
                periods=settings.retention,
                public_days=settings.retention_days,
                secret=settings.secret_key,
                now=datetime.now(UTC),
                actor=who(actor),
                dry_run=dry_run,
            )
        if as_json:
            out.print_json(json.dumps(done.as_json()))
            return
        verb = "would purge" if dry_run else "purged"
        for name, count in done.counts.items():
            out.print(f"{verb} {count} {name.replace('_', ' ')}")
        for line in done.cleaned:
            out.print(line)

    run(action)

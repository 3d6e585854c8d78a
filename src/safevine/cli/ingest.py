"""`safevine ingest`: feeds from files, each batch audited as its sender's.

The ingest actions are imported by the command that runs them: every command, the public
server included, imports this module, and the ingest path would add about 9 MB to each."""

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from safevine.cli.common import FileArg, JsonFlag, app, err, out, run, store, who
from safevine.config import Settings
from safevine.ingest.fields import timestamp
from safevine.ingest.source import FeedLines, file_lines
from safevine.ingest.summary import IngestSummary


class EventFormat(StrEnum):
    jsonl = "jsonl"
    csv = "csv"


class RosterScope(StrEnum):
    listed = "listed"
    all = "all"


def _report(summary: IngestSummary, as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps(summary.to_dict()))
    else:
        table = Table(title=f"{summary.kind}: {summary.source}", show_header=False)
        for key in ("status", "total", "applied", "duplicates", "rejected", "derived_events"):
            table.add_row(key, str(getattr(summary, key)))
        out.print(table)
        for reject in summary.rejects:
            out.print(f"  line {reject.line}: {reject.field} {reject.reason}", highlight=False)
        if summary.rejected > len(summary.rejects):
            out.print(
                f"  ... and {summary.rejected - len(summary.rejects)} more, kept in the database"
            )
        for note in summary.notes:
            out.print(f"  note: {note}", highlight=False)
    if summary.status == "refused":
        raise typer.Exit(1)
    if summary.rejected:
        raise typer.Exit(3)


def _lines(path: Path) -> FeedLines:
    return file_lines(
        path, progress=err.is_terminal, max_line_bytes=Settings.from_env().feed_max_line_bytes
    )


ingest_app = typer.Typer(
    help="Load feeds: facilities, custody events, rosters, protection lists.", no_args_is_help=True
)
app.add_typer(ingest_app, name="ingest")


@ingest_app.command("facilities")
def ingest_facilities_cmd(path: FileArg, as_json: JsonFlag = False) -> None:
    """Load a facility list (safevine's CSV columns, or ICE's FOIA list as published)."""

    def action() -> None:
        from safevine.actions import ingest

        with store() as engine:
            summary = ingest.facilities(engine, who(None), _lines(path), source=path.name)
            _report(summary, as_json)

    run(action)


@ingest_app.command("events")
def ingest_events_cmd(
    path: FileArg,
    fmt: Annotated[
        EventFormat | None, typer.Option("--format", help="Default: from the file name.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Load custody events (JSON Lines or CSV); re-running a file is a no-op."""

    def action() -> None:
        from safevine.actions import ingest

        chosen = fmt or (EventFormat.csv if path.suffix.lower() == ".csv" else EventFormat.jsonl)
        with store() as engine:
            summary = ingest.events(
                engine, who(None), _lines(path), source=path.name, fmt=chosen.value
            )
            _report(summary, as_json)

    run(action)


@ingest_app.command("roster")
def ingest_roster_cmd(
    path: FileArg,
    scope: Annotated[
        RosterScope,
        typer.Option(help="Facilities the snapshot covers: those listed in it, or all facilities."),
    ] = RosterScope.listed,
    facility: Annotated[
        list[str] | None,
        typer.Option(
            "--facility", help="Also covers this facility (repeatable), e.g. one now empty."
        ),
    ] = None,
    snapshot_at: Annotated[
        str | None, typer.Option(help="When the snapshot was taken, for a file that lists nobody.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Apply a roster snapshot: bookings, transfers and departures are derived from it."""

    def action() -> None:
        from safevine.actions import ingest

        when = None
        if snapshot_at:
            when = timestamp(snapshot_at, "--snapshot-at")
        with store() as engine:
            summary = ingest.roster(
                engine,
                who(None),
                _lines(path),
                source=path.name,
                scope=scope.value,
                declared=facility or [],
                snapshot_at=when,
            )
            _report(summary, as_json)

    run(action)


@ingest_app.command("protections")
def ingest_protections_cmd(path: FileArg, as_json: JsonFlag = False) -> None:
    """Apply a protection list; `protected` takes effect at once, feeds never unprotect."""

    def action() -> None:
        from safevine.actions import ingest

        with store() as engine:
            summary = ingest.protections(engine, who(None), _lines(path), source=path.name)
            _report(summary, as_json)

    run(action)

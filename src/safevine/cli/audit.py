"""`safevine audit`: the exposure audit and the audit chain."""

import json
from datetime import UTC, datetime
from typing import Annotated

import typer

from safevine.cli.common import JsonFlag, app, err, load_settings, out, run, store
from safevine.domain import value_ranges

audit_app = typer.Typer(help="Audits: prove nothing non-public leaks.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@audit_app.command("exposure")
def audit_exposure_cmd(as_json: JsonFlag = False) -> None:
    """Search for every non-public person through the real app; exit 1 if any appears."""
    from safevine.exposure_audit import audit_exposure

    def action() -> None:
        with store() as engine:
            report = audit_exposure(load_settings(), engine)
        if as_json:
            out.print_json(json.dumps({**report.__dict__, "passed": report.passed}))
        else:
            out.print(
                f"checked {report.persons_checked} non-public persons with "
                f"{report.searches} searches ({report.unreachable} have no country of "
                "birth, so no public search can reach them)"
            )
            if report.exposed:
                out.print(f"[red]EXPOSED[/red] internal ids: {', '.join(map(str, report.exposed))}")
            if report.unverified:
                out.print(
                    f"[red]NOT VERIFIED[/red] (search failed) internal ids: "
                    f"{', '.join(map(str, report.unverified))}"
                )
            if report.passed:
                out.print("[green]no non-public person appears on any public surface[/green]")
        if not report.passed:
            raise typer.Exit(1)

    run(action)


@audit_app.command("verify")
def audit_verify(
    expect_head: Annotated[
        str | None,
        typer.Option(help="A chain head exported earlier: it must still be in the chain."),
    ] = None,
) -> None:
    """Recompute the audit chain; exit 1 at the first broken link."""
    from safevine.store.records import audit

    def action() -> None:
        with store() as engine, engine.connect() as connection:
            result = audit.verify(connection)
            known = {e.hash for e in audit.entries(connection)} if expect_head else set()
        if not result.ok:
            err.print(
                f"[red]audit chain broken[/red] at entry {result.broken_at}: {result.problem}"
            )
            raise typer.Exit(1)
        if expect_head and expect_head not in known:
            err.print(
                "[red]audit chain broken[/red]: the expected head is no longer in the "
                "chain (entries at the end were removed or replaced)"
            )
            raise typer.Exit(1)
        out.print(f"audit chain intact: {result.entries} entries, head {result.head}")
        if not result.real_key:
            err.print(
                "warning: checked with the development key; set SAFEVINE_SECRET_KEY (or "
                "SAFEVINE_AUDIT_KEY) as the services have it"
            )

    run(action)


@audit_app.command("export")
def audit_export(
    since: Annotated[str | None, typer.Option(help="ISO date or date and time.")] = None,
) -> None:
    """Entries as JSON Lines, then the chain head, to keep outside the database."""
    from safevine.store.records import audit

    def action() -> None:
        start = value_ranges.since(since, "--since", datetime.now(UTC)) if since else None
        with store() as engine, engine.connect() as connection:
            for entry in audit.entries(connection, start):
                print(json.dumps(entry.as_json(), ensure_ascii=False))
            print(json.dumps({"head": audit.verify(connection).head}))

    run(action)

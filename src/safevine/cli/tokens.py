"""`safevine token`: staff API tokens."""

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from safevine.actions import tokens
from safevine.cli.common import app, checked, err, out, run, store, who
from safevine.domain.value_ranges import (
    NAME_LENGTH,
    check_text,
)

token_app = typer.Typer(help="Staff API tokens.", no_args_is_help=True)
app.add_typer(token_app, name="token")


@token_app.command("create")
def token_create(
    name: Annotated[
        str,
        typer.Option(
            "--name", help="Who or what holds it.", callback=checked(check_text, NAME_LENGTH)
        ),
    ],
    scope: Annotated[
        list[str],
        typer.Option(
            "--scope", help="ingest, protect, read, report, admin or correct (repeatable)."
        ),
    ],
) -> None:
    """Make a token; it is printed once and only its hash is kept."""

    def action() -> None:
        now = datetime.now(UTC)
        with store() as engine, engine.begin() as connection:
            secret = tokens.create(connection, who(None), name, scope, now)
        out.print(secret, highlight=False, soft_wrap=True)
        err.print("store it now: it is not shown again")

    run(action)


@token_app.command("list")
def token_list() -> None:
    """Tokens, their scopes and whether they are revoked (never the secrets)."""
    from safevine.store.records import staff_tokens

    def action() -> None:
        with store() as engine, engine.connect() as connection:
            rows = staff_tokens.listing(connection)
        table = Table("name", "scopes", "created (UTC)", "last used (UTC)", "revoked")
        for t in rows:
            table.add_row(
                t.name,
                ", ".join(t.scopes),
                f"{t.created_at:%Y-%m-%d %H:%M}",
                f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "",
                "yes" if t.revoked_at else "",
            )
        out.print(table)

    run(action)


@token_app.command("revoke")
def token_revoke(
    name: Annotated[str, typer.Argument(callback=checked(check_text, NAME_LENGTH))],
) -> None:
    """Revoke a token at once."""

    def action() -> None:
        now = datetime.now(UTC)
        with store() as engine, engine.begin() as connection:
            tokens.revoke(connection, who(None), name, now)
        out.print(f"token {name!r} is revoked")

    run(action)

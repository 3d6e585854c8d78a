"""`safevine staff`: the staff service, and staff accounts from the command line (the
first admin is made here; admins manage the rest in the console)."""

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from safevine.actions import accounts
from safevine.cli.common import (
    app,
    err,
    load_settings,
    out,
    run,
    serving_settings,
    store,
    who,
)
from safevine.contact_vault import ContactVault
from safevine.domain.staff_roles import Role
from safevine.logs import configure as configure_logging
from safevine.store.records import staff_accounts
from safevine.store.records.staff_accounts import Enrolment

staff_app = typer.Typer(help="The staff service and staff accounts.", no_args_is_help=True)
account_app = typer.Typer(help="Staff accounts: roles, sign-in, locks.", no_args_is_help=True)
app.add_typer(staff_app, name="staff")
staff_app.add_typer(account_app, name="account")

Roles = Annotated[
    list[str],
    typer.Option("--role", help=f"{', '.join(r.value for r in Role)} (repeatable)."),
]
Name = Annotated[str, typer.Argument(help="The account's sign-in name.")]


@staff_app.command("serve")
def staff_serve_cmd(
    host: Annotated[
        str, typer.Option(help="Address to listen on (keep it on an internal network).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8001,
) -> None:
    """Serve the staff console, the staff API, its reports and /metrics, apart from the
    public site."""
    from safevine.web.server import serve
    from safevine.web.staff_app import create_staff_app

    def action() -> None:
        with store():
            pass
        settings = serving_settings()
        out.print(f"safevine staff service on http://{host}:{port}/ (Ctrl-C stops it)")
        configure_logging(settings.log_level)
        serve(create_staff_app(settings), host, port)

    run(action)


def _vault() -> ContactVault:
    settings = serving_settings()
    return ContactVault(settings.secret_key, settings.old_secret_keys)


def _show_enrolment(name: str, enrolment: Enrolment) -> None:
    import segno

    out.print(f"second factor for {name}: scan this in an authenticator app, or type the key")
    segno.make(enrolment.uri, error="m").terminal(compact=True)
    out.print(f"key: {enrolment.secret}", highlight=False, soft_wrap=True)
    err.print("shown once: the key is kept encrypted and cannot be read back")


@account_app.command("create")
def account_create(
    name: Name,
    role: Roles,
    oidc_subject: Annotated[
        str | None,
        typer.Option(help="Sign in through the agency's OpenID Connect provider instead."),
    ] = None,
) -> None:
    """Make an account. A password account is asked for its password (twice) and shown
    its second-factor key once."""

    def action() -> None:
        password = None
        if oidc_subject is None:
            password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
        vault = _vault()
        with store() as engine, engine.begin() as connection:
            account, enrolment = accounts.create(
                connection,
                vault,
                who(None),
                name,
                role,
                password,
                datetime.now(UTC),
                oidc_subject,
            )
        roles = ", ".join(sorted(r.value for r in account.roles))
        out.print(f"account {account.name!r} made ({roles})")
        if enrolment is not None:
            _show_enrolment(account.name, enrolment)

    run(action)


@account_app.command("list")
def account_list() -> None:
    """Accounts, their roles and state (never a secret)."""

    def action() -> None:
        load_settings()
        with store() as engine, engine.connect() as connection:
            rows = staff_accounts.listing(connection)
        table = Table("name", "roles", "second factor", "state")
        for a in rows:
            state = "disabled" if a.disabled else "locked" if a.locked else "active"
            factor = "provider" if a.oidc_subject else "set up" if a.mfa_enrolled else "not yet"
            table.add_row(a.name, ", ".join(sorted(r.value for r in a.roles)), factor, state)
        out.print(table)

    run(action)


@account_app.command("roles")
def account_roles(name: Name, role: Roles) -> None:
    """Replace an account's roles; its sessions end at once."""

    def action() -> None:
        with store() as engine, engine.begin() as connection:
            account = staff_accounts.by_name(connection, name)
            changed = accounts.set_roles(connection, who(None), account.id, role, datetime.now(UTC))
        out.print(f"{changed.name}: {', '.join(sorted(r.value for r in changed.roles))}")

    run(action)


@account_app.command("disable")
def account_disable(name: Name) -> None:
    """Stop an account signing in; its sessions end at once."""

    def action() -> None:
        with store() as engine, engine.begin() as connection:
            account = staff_accounts.by_name(connection, name)
            accounts.set_disabled(connection, who(None), account.id, True, datetime.now(UTC))
        out.print(f"{name} is disabled")

    run(action)


@account_app.command("enable")
def account_enable(name: Name) -> None:
    """Let a disabled account sign in again."""

    def action() -> None:
        with store() as engine, engine.begin() as connection:
            account = staff_accounts.by_name(connection, name)
            accounts.set_disabled(connection, who(None), account.id, False, datetime.now(UTC))
        out.print(f"{name} is enabled")

    run(action)


@account_app.command("unlock")
def account_unlock(name: Name) -> None:
    """Unlock an account locked by failed sign-ins."""

    def action() -> None:
        with store() as engine, engine.begin() as connection:
            account = staff_accounts.by_name(connection, name)
            accounts.unlock(connection, who(None), account.id, datetime.now(UTC))
        out.print(f"{name} is unlocked")

    run(action)


@account_app.command("reset-mfa")
def account_reset_mfa(name: Name) -> None:
    """A new second-factor key for an account (a lost phone); shown once."""

    def action() -> None:
        vault = _vault()
        with store() as engine, engine.begin() as connection:
            account = staff_accounts.by_name(connection, name)
            enrolment = accounts.reset_mfa(
                connection, vault, who(None), account.id, datetime.now(UTC)
            )
        _show_enrolment(name, enrolment)

    run(action)

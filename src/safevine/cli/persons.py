"""A person, as staff act on them: `person show`, `protect`, `clear`, `clear-confirm`."""

import json
from datetime import UTC, datetime

import typer
from rich.table import Table

from safevine.actions import accounts
from safevine.actions import persons as person_actions
from safevine.actions.actor import Actor
from safevine.cli.common import (
    A_NUMBER,
    ActorOption,
    JsonFlag,
    Reason,
    RowIdArg,
    app,
    load_settings,
    login_actor,
    out,
    run,
    serving_settings,
    store,
    who,
)
from safevine.contact_vault import ContactVault
from safevine.domain.a_number import format_a_number
from safevine.domain.errors import NotAllowedError
from safevine.domain.staff_roles import Right
from safevine.store.records import protection
from safevine.store.records.person_view import StaffPersonView, view_json

person_app = typer.Typer(help="Staff view of persons.", no_args_is_help=True)
app.add_typer(person_app, name="person")


@app.command("protect")
def protect_cmd(a_number: str, reason: Reason, actor: ActorOption = None) -> None:
    """Protect a person at once: they disappear from every public surface."""

    def action() -> None:
        with store() as engine, engine.begin() as connection:
            person, changed = person_actions.protect(
                connection, who(actor), a_number, reason, datetime.now(UTC), A_NUMBER
            )
        label = format_a_number(person.a_number)
        out.print(f"{label} is now protected" if changed else f"{label} was already protected")

    run(action)


@app.command("clear")
def clear_cmd(a_number: str, reason: Reason, actor: ActorOption = None) -> None:
    """Clear a person's protection (a staff decision with a reason): they may become public.

    With SAFEVINE_TWO_PERSON_CLEAR (the default) this only asks; a different person
    confirms with `safevine clear-confirm REQUEST` within 24 hours.
    """

    def action() -> None:
        settings = load_settings()
        with store() as engine, engine.begin() as connection:
            outcome = person_actions.clear(
                connection,
                who(actor),
                a_number,
                reason,
                datetime.now(UTC),
                two_person=settings.two_person_clear,
                field=A_NUMBER,
            )
        label = format_a_number(outcome.person.a_number)
        asked = outcome.request
        if asked is not None:
            out.print(
                f"clear request {asked.id} for {label} is waiting for a second person: "
                f"`safevine clear-confirm {asked.id}` before "
                f"{asked.expires_at:%Y-%m-%d %H:%M} UTC; until then {label} stays protected"
            )
        else:
            out.print(
                f"{label} is now cleared" if outcome.changed else f"{label} was already cleared"
            )

    run(action)


@app.command("clear-confirm")
def clear_confirm_cmd(request_id: RowIdArg) -> None:
    """Confirm someone else's clear request: the person is cleared.

    Anyone with the database can run this command, so it asks who confirms: a supervisor's
    account name, password and a code from its authenticator, checked as a sign-in is.
    """

    def action() -> None:
        settings = serving_settings()
        vault = ContactVault(settings.secret_key, settings.old_secret_keys)
        with store() as engine, engine.connect() as connection:
            asked = protection.pending_request(connection, request_id)
        out.print(f"clear request {asked.id}, asked by {asked.requested_by}: {asked.reason}")
        name = typer.prompt("your staff account")
        password = typer.prompt("password", hide_input=True)
        code = typer.prompt("code from your authenticator")
        with store() as engine:
            account = accounts.confirm_identity(
                engine,
                vault,
                name,
                password,
                code,
                login_actor(),
                datetime.now(UTC),
                accounts.policy(settings),
            )
            if Right.CONFIRM_CLEAR not in account.rights:
                raise NotAllowedError(f"{account.name} may not confirm a clear (a supervisor may)")
            with engine.begin() as connection:
                person_id = person_actions.confirm_clear(
                    connection, Actor(account.name), request_id, datetime.now(UTC)
                )
        out.print(f"clear request {request_id} confirmed: person {person_id} is now cleared")

    run(action)


@person_app.command("show")
def person_show(a_number: str, as_json: JsonFlag = False) -> None:
    """Everything about a person, protection and history included (staff only)."""

    def action() -> None:
        with store() as engine, engine.begin() as connection:
            view = person_actions.view(connection, who(None), a_number, datetime.now(UTC), A_NUMBER)
        if as_json:
            out.print_json(json.dumps(view_json(view)))
            return
        _print_view(view)

    run(action)


def _print_view(view: StaffPersonView) -> None:
    name = " ".join(p for p in (view.given_name, view.family_name) if p) or "(no name on record)"
    out.print(f"[bold]{name}[/bold]  {format_a_number(view.a_number)}  (internal id {view.id})")
    if view.aliases:
        out.print(
            "also known as: " + "; ".join(f"{g} {f}" for g, f in view.aliases), highlight=False
        )
    out.print(
        f"born {view.date_of_birth or 'unknown'} in {view.country_of_birth or 'unknown'}",
        highlight=False,
    )
    out.print(
        f"protection: [bold]{view.protection}[/bold]"
        + (f" (screened {view.screened_at:%Y-%m-%d %H:%M} UTC)" if view.screened_at else "")
    )
    if view.state:
        out.print(
            f"status: {view.state} since {view.status_since:%Y-%m-%d %H:%M} UTC"
            + (f" at {view.facility_name} ({view.facility_code})" if view.facility_code else ""),
            highlight=False,
        )
    else:
        out.print("status: no custody events")
    history = Table(
        "occurred (UTC)", "event", "event id", "facility", "details", "origin", title="history"
    )
    for e in view.history:
        history.add_row(
            f"{e.occurred_at:%Y-%m-%d %H:%M}",
            e.kind
            + (
                f" [RETRACTED {e.retracted_at:%Y-%m-%d %H:%M} by {e.retracted_by}: "
                f"{e.retraction_reason}]"
                if e.retracted_at
                else ""
            ),
            e.event_id,
            e.facility_code or "",
            json.dumps(e.details) if e.details else "",
            e.origin,
        )
    out.print(history)
    if view.protection_history:
        changes = Table("recorded (UTC)", "change", "by", "source", "reason", title="protection")
        for c in view.protection_history:
            changes.add_row(
                f"{c.recorded_at:%Y-%m-%d %H:%M}",
                f"{c.from_status} -> {c.to_status}",
                c.actor,
                c.source,
                c.reason or "",
            )
        out.print(changes)

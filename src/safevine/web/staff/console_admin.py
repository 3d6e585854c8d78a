"""The console's administration pages: staff accounts (made with a first password, their
second factor set up at their first sign-in; roles changed, second factor reset,
disabled, unlocked) and API tokens (each acting for an account, shown once)."""

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from safevine.actions import accounts, tokens
from safevine.actions.actor import Actor
from safevine.domain.errors import ConflictError, FieldError, RefusedError
from safevine.domain.staff_roles import Right, Role
from safevine.store.records import staff_accounts, staff_tokens
from safevine.store.records.staff_accounts import Session
from safevine.web.staff.console_pages import page
from safevine.web.staff.console_session import Staffer, checked_form, needs
from safevine.web.staff.refusals import status_of
from safevine.web.staff.state import StaffState

router = APIRouter(include_in_schema=False)
ROLES = [r.value for r in Role]
DONE = {
    "created": "Account made. They set up their second factor at their first sign-in.",
    "roles": "Roles changed; their sessions ended.",
    "reset-mfa": "Second factor reset: they set up a new one at their next sign-in.",
    "disable": "Disabled; their sessions ended.",
    "enable": "Enabled.",
    "unlock": "Unlocked.",
}


def _problem(error: Exception) -> str:
    if isinstance(error, FieldError):
        return f"{error.field.capitalize()} {error.reason}."
    return f"{error}."


def _list(request: Request, session: Session, status: int = 200, **context: Any) -> Response:
    with StaffState.of(request).records_engine.connect() as connection:
        rows = staff_accounts.listing(connection)
    return page(
        request, "staff/accounts.html", session, status, accounts=rows, roles=ROLES, **context
    )


@router.get("/accounts")
def account_list(request: Request, session: Staffer) -> Response:
    needs(session, Right.MANAGE_ACCOUNTS)
    return _list(request, session)


@router.post("/accounts")
async def account_create(request: Request, session: Staffer) -> Response:
    needs(session, Right.MANAGE_ACCOUNTS)
    form = await checked_form(request, session)
    roles = [str(r) for r in form.getlist("role")]
    state = StaffState.of(request)
    try:
        with state.records_engine.begin() as connection:
            account, _ = accounts.create(
                connection,
                state.vault,
                Actor(session.account.name),
                str(form.get("name") or ""),
                roles,
                str(form.get("password") or ""),
                datetime.now(UTC),
            )
    except (FieldError, RefusedError) as error:
        return _list(request, session, 422, problem=_problem(error))
    return RedirectResponse(f"/accounts/{account.id}?done=created", status_code=303)


def _account(
    request: Request, session: Session, account_id: int, status: int = 200, **context: Any
) -> Response:
    try:
        with StaffState.of(request).records_engine.connect() as connection:
            account = staff_accounts.get(connection, account_id)
    except RefusedError:
        return page(
            request,
            "staff/message.html",
            session,
            404,
            heading="No such account",
            message=f"There is no account {account_id}.",
        )
    actions = [("reset-mfa", "Reset the second factor")] if not account.oidc_subject else []
    actions.append(("enable", "Enable") if account.disabled else ("disable", "Disable"))
    if account.locked:
        actions.append(("unlock", "Unlock"))
    return page(
        request,
        "staff/account.html",
        session,
        status,
        account=account,
        roles=ROLES,
        held={r.value for r in account.roles},
        actions=actions,
        **context,
    )


@router.get("/accounts/{account_id}")
def account_page(request: Request, account_id: int, session: Staffer) -> Response:
    needs(session, Right.MANAGE_ACCOUNTS)
    return _account(
        request, session, account_id, notice=DONE.get(request.query_params.get("done", ""))
    )


@router.post("/accounts/{account_id}/{change}")
async def account_change(
    request: Request, account_id: int, change: str, session: Staffer
) -> Response:
    needs(session, Right.MANAGE_ACCOUNTS)
    form = await checked_form(request, session)
    state = StaffState.of(request)
    actor, now = Actor(session.account.name), datetime.now(UTC)
    try:
        if account_id == session.account.id and change in ("disable", "roles"):
            raise ConflictError(
                "you cannot change your own roles or disable yourself; ask another administrator"
            )
        with state.records_engine.begin() as connection:
            if change == "roles":
                accounts.set_roles(
                    connection, actor, account_id, [str(r) for r in form.getlist("role")], now
                )
            elif change == "reset-mfa":
                accounts.reset_mfa(connection, state.vault, actor, account_id, now)
            elif change in ("disable", "enable"):
                accounts.set_disabled(connection, actor, account_id, change == "disable", now)
            elif change == "unlock":
                accounts.unlock(connection, actor, account_id, now)
            else:
                return page(
                    request,
                    "staff/message.html",
                    session,
                    404,
                    heading="Not found",
                    message="There is no such change.",
                )
    except (FieldError, RefusedError) as error:
        status = 422 if isinstance(error, FieldError) else status_of(error)
        return _account(request, session, account_id, status, problem=_problem(error))
    return RedirectResponse(f"/accounts/{account_id}?done={change}", status_code=303)


# API tokens -------------------------------------------------------------------------------


def _tokens(request: Request, session: Session, status: int = 200, **context: Any) -> Response:
    with StaffState.of(request).records_engine.connect() as connection:
        rows = staff_tokens.listing(connection)
        people = [a for a in staff_accounts.listing(connection) if not a.disabled]
    context.setdefault("secret", None)
    context.setdefault("made", None)
    return page(
        request,
        "staff/tokens.html",
        session,
        status,
        tokens=rows,
        accounts=people,
        scopes=list(staff_tokens.SCOPES),
        **context,
    )


@router.get("/tokens")
def token_list(request: Request, session: Staffer) -> Response:
    needs(session, Right.MANAGE_TOKENS)
    return _tokens(request, session)


@router.post("/tokens")
async def token_create(request: Request, session: Staffer) -> Response:
    needs(session, Right.MANAGE_TOKENS)
    form = await checked_form(request, session)
    name = str(form.get("name") or "")
    scopes = [str(s) for s in form.getlist("scope")]
    try:
        chosen = str(form.get("account") or "")
        if not chosen.isdigit():
            raise FieldError("account", "must be chosen")
        with StaffState.of(request).records_engine.begin() as connection:
            owner = staff_accounts.get(connection, int(chosen))
            secret = tokens.create(
                connection, Actor(session.account.name), name, scopes, datetime.now(UTC), owner
            )
    except (FieldError, RefusedError) as error:
        return _tokens(request, session, 422, problem=_problem(error))
    # Shown in this answer only: not a redirect, so the secret is in no URL or history.
    return _tokens(request, session, secret=secret, made=name.strip())


@router.post("/tokens/revoke")
async def token_revoke(request: Request, session: Staffer) -> Response:
    needs(session, Right.MANAGE_TOKENS)
    form = await checked_form(request, session)
    try:
        with StaffState.of(request).records_engine.begin() as connection:
            tokens.revoke(
                connection,
                Actor(session.account.name),
                str(form.get("name") or ""),
                datetime.now(UTC),
            )
    except RefusedError as error:
        return _tokens(request, session, status_of(error), problem=_problem(error))
    return RedirectResponse("/tokens", status_code=303)

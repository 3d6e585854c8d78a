"""Signing in to the staff console: account name and password, then a TOTP code (with
enrolment the first time), and signing out, which ends the session on the server."""

import secrets
from datetime import UTC, datetime

import segno
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from safevine.actions import accounts
from safevine.domain.errors import RefusedError
from safevine.store.records import staff_accounts
from safevine.web.staff.console_pages import page
from safevine.web.staff.console_session import (
    COOKIE,
    LOGIN_CSRF_COOKIE,
    Staffer,
    checked_form,
    current,
    secure_cookies,
)
from safevine.web.staff.state import StaffState

router = APIRouter(include_in_schema=False)


def client_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def login_page(request: Request, problem: str | None = None, status: int = 200) -> Response:
    token = secrets.token_urlsafe(32)
    oidc = bool(StaffState.of(request).settings.staff_oidc_issuer)
    response = page(request, "staff/login.html", None, login_csrf=token, problem=problem, oidc=oidc)
    response.status_code = status
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(request),
        path="/login",
    )
    return response


@router.get("/login")
def login_form(request: Request) -> Response:
    return login_page(request)


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form(max_fields=10)
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    given = form.get("csrf_token")
    if not expected or not isinstance(given, str) or not secrets.compare_digest(given, expected):
        return login_page(request, "This form has expired. Please try again.", 403)
    name, password = form.get("name"), form.get("password")
    if not isinstance(name, str) or not isinstance(password, str):
        return login_page(request, "Enter your account name and password.", 400)
    state = StaffState.of(request)
    try:
        _, token = accounts.sign_in(
            state.records_engine,
            name,
            password,
            client_of(request),
            datetime.now(UTC),
            state.policy,
        )
    except RefusedError as error:
        return login_page(request, str(error).capitalize() + ".", 401)
    response = RedirectResponse("/login/code", status_code=303)
    response.set_cookie(
        COOKIE, token, httponly=True, samesite="strict", secure=secure_cookies(request)
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


def _code_page(request: Request, problem: str | None = None, status: int = 200) -> Response:
    found = current(request)
    if found is None:
        return RedirectResponse("/login", status_code=303)
    session, _ = found
    if session.mfa_passed:
        return RedirectResponse("/", status_code=303)
    state = StaffState.of(request)
    enrolment, svg = None, ""
    if not session.account.mfa_enrolled:
        with state.records_engine.connect() as connection:
            enrolment = staff_accounts.enrolment(connection, state.vault, session.account.id)
        svg = segno.make(enrolment.uri, error="m").svg_inline(scale=4, title="Enrolment code")
    response = page(
        request,
        "staff/code.html",
        None,
        csrf_token=session.csrf_token,
        enrolment=enrolment,
        qr_svg=svg,
        problem=problem,
    )
    response.status_code = status
    return response


@router.get("/login/code")
def code_form(request: Request) -> Response:
    return _code_page(request)


@router.post("/login/code")
async def code(request: Request) -> Response:
    found = current(request)
    if found is None:
        return RedirectResponse("/login", status_code=303)
    session, token = found
    form = await checked_form(request, session)
    given = form.get("code")
    state = StaffState.of(request)
    try:
        accounts.second_factor(
            state.records_engine,
            state.vault,
            token,
            given if isinstance(given, str) else "",
            client_of(request),
            datetime.now(UTC),
            state.policy,
        )
    except RefusedError as error:
        if current(request) is None:  # locked: the half session ended too
            return login_page(request, str(error).capitalize() + ".", 401)
        return _code_page(request, str(error).capitalize() + ".", 401)
    return RedirectResponse("/", status_code=303)


@router.post("/logout")
async def logout(request: Request, session: Staffer) -> Response:
    await checked_form(request, session)
    token = request.cookies.get(COOKIE, "")
    with StaffState.of(request).records_engine.begin() as connection:
        accounts.sign_out(connection, session, token, datetime.now(UTC))
    response: Response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE)
    return response

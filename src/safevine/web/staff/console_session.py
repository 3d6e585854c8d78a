"""Who is signed in to the staff console: a server-side session named by an HttpOnly,
SameSite=Strict cookie (Secure outside loopback http), and a CSRF token on every form.

A page that needs a signed-in person gets `signed_in`; a form post also `checked_form`,
which refuses a missing or wrong CSRF token before anything is read or changed.
"""

import secrets
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request
from starlette.datastructures import FormData

from safevine.domain.staff_roles import Right
from safevine.store.records import staff_accounts
from safevine.store.records.staff_accounts import Session
from safevine.web.staff.state import StaffState

COOKIE = "sv_staff"
LOGIN_CSRF_COOKIE = "sv_staff_login"
FORM_LIMIT = 1000  # fields in one form: a bulk screening's people


class SignInNeededError(Exception):
    """No signed-in session: the page sends the browser to sign in."""

    def __init__(self, half: bool = False) -> None:
        self.half = half


class ForbiddenError(Exception):
    """Signed in, but without the right, or a form without its CSRF token."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def secure_cookies(request: Request) -> bool:
    return StaffState.of(request).settings.staff_base_url.startswith("https://")


def current(request: Request) -> tuple[Session, str] | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    state = StaffState.of(request)
    with state.records_engine.begin() as connection:
        session = staff_accounts.session_for(connection, token, datetime.now(UTC), state.policy)
    return (session, token) if session is not None else None


def signed_in(request: Request) -> Session:
    found = current(request)
    if found is None:
        raise SignInNeededError()
    if not found[0].mfa_passed:
        raise SignInNeededError(half=True)
    return found[0]


Staffer = Annotated[Session, Depends(signed_in)]


def needs(session: Session, right: Right) -> None:
    if right not in session.account.rights:
        raise ForbiddenError("Your role does not allow this. Ask an administrator.")


async def checked_form(request: Request, session: Session) -> FormData:
    form = await request.form(max_fields=FORM_LIMIT)
    given = form.get("csrf_token")
    if not isinstance(given, str) or not secrets.compare_digest(given, session.csrf_token):
        raise ForbiddenError("This form has expired. Go back, reload the page and try again.")
    return form

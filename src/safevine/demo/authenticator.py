"""A stand-in authenticator app for the demo's staff accounts, on the staff service at
/demo/authenticator (it exists only in the demo): each account's current code, so that
a newcomer can sign in without installing anything."""

import time

import pyotp
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from safevine.demo.staff_accounts import DemoStaff
from safevine.web.staff.console_pages import page


def authenticator_router(staff: list[DemoStaff]) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/demo/authenticator", response_class=HTMLResponse)
    def codes(request: Request) -> HTMLResponse:
        now = time.time()
        shown = [(m.name, m.password, pyotp.TOTP(m.key).at(now)) for m in staff]
        left = 30 - int(now) % 30
        return page(request, "staff/demo_authenticator.html", None, shown=shown, left=left)

    return router

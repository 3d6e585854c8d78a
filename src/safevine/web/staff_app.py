"""The staff service (`safevine staff serve`): the staff console (pages for people who
sign in), the staff JSON API (for tokens), the reports and `/metrics`, on a port and
origin of its own, meant for an internal network only.

It is the only web process that holds an engine on the full records. Its answers name the
reason for a refusal (staff need it); the public service never does.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine
from starlette.exceptions import HTTPException

from safevine.actions import accounts, feed_health, purge
from safevine.config import Settings
from safevine.contact_vault import ContactVault
from safevine.store.engine import make_engine
from safevine.web.app_shell import STATIC, Lifespan, error_headers, guard, include, new_app
from safevine.web.observability import Metrics
from safevine.web.staff import (
    console_admin,
    console_feeds,
    console_login,
    console_oidc,
    console_pages,
    console_review,
    events,
    feed_health_api,
    feeds,
    holds,
    persons,
    report,
    screening,
    tokens,
)
from safevine.web.staff.console_pages import page
from safevine.web.staff.console_session import ForbiddenError, SignInNeededError, current
from safevine.web.staff.feed_metrics import FeedHealthCollector
from safevine.web.staff.refusals import answer_refusals
from safevine.web.staff.state import StaffState

DEFAULT_PORT = 8001


def _clock(records: Engine, settings: Settings) -> Lifespan:
    """Feed health is evaluated, and what is past its retention purged, on the staff
    service's clock: it alone holds the records."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        tasks = [
            asyncio.create_task(feed_health.keep_evaluating(records, settings, stop)),
            asyncio.create_task(purge.keep_purging(records, settings, stop)),
        ]
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(*tasks)

    return lifespan


def create_staff_app(settings: Settings) -> FastAPI:
    records = make_engine(settings.database_url)
    app = new_app("safevine staff API", _clock(records, settings))
    metrics = Metrics()
    metrics.watch_outbox(records)
    metrics.registry.register(FeedHealthCollector(records))
    vault = ContactVault(settings.secret_key, settings.old_secret_keys)
    app.state.staff = StaffState(settings, records, metrics, vault, accounts.policy(settings))
    accounts.prepare_logins()
    # The staff service is reached over TLS by the agency's proxy or on loopback; HSTS
    # follows its own base URL, not the public site's.
    guard(app, metrics, _server_error, https=settings.staff_base_url.startswith("https://"))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    include(
        app,
        [
            console_login.router,
            console_oidc.router,
            console_pages.router,
            console_review.router,
            console_admin.router,
            console_feeds.router,
            events.router,
            feed_health_api.router,
            feeds.router,
            holds.router,
            persons.router,
            screening.router,
            tokens.router,
            report.router,
        ],
    )
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    answer_refusals(app)
    app.add_exception_handler(SignInNeededError, _sign_in)  # type: ignore[arg-type]
    app.add_exception_handler(ForbiddenError, _forbidden)  # type: ignore[arg-type]
    return app


async def _sign_in(request: Request, error: SignInNeededError) -> Response:
    return RedirectResponse("/login/code" if error.half else "/login", status_code=303)


async def _forbidden(request: Request, error: ForbiddenError) -> Response:
    found = current(request)
    return page(
        request,
        "staff/message.html",
        found[0] if found else None,
        403,
        heading="Not allowed",
        message=error.message,
    )


async def _http_error(request: Request, error: HTTPException) -> Response:
    return JSONResponse(
        {"error": str(error.detail)},
        status_code=error.status_code,
        headers=error_headers(request, error),
    )


async def _server_error(request: Request) -> Response:
    return JSONResponse(
        {"error": "something went wrong on our side; the server log says where"}, status_code=500
    )

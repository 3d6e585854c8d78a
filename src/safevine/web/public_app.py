"""The public service (`safevine serve`): search pages and API, registrations, inbound
SMS and first-party static files, with safe errors.

Nothing of the staff side is here: a staff path answers as any unknown path does, and
every engine this app holds can read the public views and write registrations and
notifications only (`store.public.connection`). The staff service is `web.staff_app`.
"""

from datetime import UTC, datetime

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine
from starlette.exceptions import HTTPException

from safevine.config import Settings
from safevine.contact_vault import ContactVault
from safevine.i18n import N_, translations
from safevine.store.public.awaited_lookup import AwaitedLookups
from safevine.store.public.connection import make_public_engine
from safevine.store.public.lookup import Lookups
from safevine.store.public.lookup_process import ProcessLookups
from safevine.store.public.prepared_lookup import PreparedLookups
from safevine.store.public.replica_lookup import ReplicaLookups
from safevine.web.app_shell import STATIC, error_headers, guard, include, language, new_app
from safevine.web.client_address import ClientAddresses
from safevine.web.observability import Metrics
from safevine.web.public import (
    acknowledge,
    api,
    pages,
    registration_api,
    registration_pages,
    sms_inbound,
    voice_callbacks,
    webhook_ack,
)
from safevine.web.public.feed_delays import DelayBoard
from safevine.web.public.search import CrowdAnswer, Searcher
from safevine.web.public.search_crowds import queue_crowd_alert
from safevine.web.public.search_fast_path import SearchFastPath, takes
from safevine.web.rate_limits import RateLimiter
from safevine.web.safety_layer import SafetyLayer
from safevine.web.state import AppState

_INVALID = N_("This value is not valid.")
_NOT_FOUND = N_("Not found.")
_FAILED = N_("Something went wrong on our side. Nothing you entered was kept.")


def create_public_app(
    settings: Settings, public_engine: Engine | None = None, *, search_fast_path: bool = True
) -> FastAPI:
    """The public app, on `public_engine` (by default one that can read only the public
    views). `search_fast_path=False` leaves every search to the route (tests compare the
    two)."""
    app = new_app("safevine public API")
    limiter = RateLimiter.from_settings(settings) if settings.rate_limits_enabled else None
    engine = public_engine or make_public_engine(
        settings.database_url, settings.public_database_url
    )
    vault = ContactVault(settings.secret_key, settings.old_secret_keys)
    metrics = Metrics()
    crowd = CrowdAnswer(
        settings.search_crowd_delay,
        lambda key, refs: queue_crowd_alert(engine, settings, key, refs, datetime.now(UTC)),
    )
    lookups: Lookups | AwaitedLookups | ReplicaLookups | ProcessLookups
    if settings.search_replica_urls:
        replicas = [make_public_engine(url) for url in settings.search_replica_urls]
        lookups = ReplicaLookups(engine, replicas)
    elif engine.dialect.name == "postgresql":
        lookups = AwaitedLookups(engine)
    elif settings.search_lookup_process and engine.url.database not in (None, "", ":memory:"):
        lookups = ProcessLookups(engine)
    else:
        lookups = PreparedLookups(engine)
    searcher = Searcher(lookups, limiter, DelayBoard(engine), crowd)
    clients = ClientAddresses(settings.trusted_proxies)
    app.state.safevine = AppState(settings, engine, limiter, vault, metrics, searcher, clients)
    # The search fast path is innermost, so its answers and failures get the headers and
    # are counted like any other.
    if search_fast_path:
        app.add_middleware(SearchFastPath, state=app.state.safevine)
        # What it may answer goes to the safety layer past Starlette's outer layers, all
        # pass-throughs for such a request (web.front_door).
        app.take_straight(takes, SafetyLayer)
    guard(app, metrics, _server_error, https=settings.public_base_url.startswith("https://"))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    include(
        app,
        [
            api.router,
            registration_api.router,
            sms_inbound.router,
            voice_callbacks.router,
            acknowledge.router,
            webhook_ack.router,
            pages.router,
            registration_pages.router,
        ],
    )
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    return app


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


async def _http_error(request: Request, error: HTTPException) -> Response:
    """Only a generic word, in the reader's language: never the reason."""
    chosen = language(request)
    headers = error_headers(request, error)
    if _is_api(request):
        message = translations(chosen).gettext(_NOT_FOUND if error.status_code == 404 else _INVALID)
        return JSONResponse({"error": message}, status_code=error.status_code, headers=headers)
    response = pages.page(
        request,
        "message.html",
        chosen,
        status=error.status_code,
        kind="not_found" if error.status_code == 404 else "bad_request",
    )
    response.headers.update(headers)
    return response


async def _server_error(request: Request) -> Response:
    chosen = language(request)
    if _is_api(request):
        return JSONResponse({"error": translations(chosen).gettext(_FAILED)}, status_code=500)
    return pages.page(request, "message.html", chosen, status=500, kind="server_error")


def app_from_env() -> FastAPI:
    """The public app of one of `safevine serve --workers N`'s processes, built from the
    environment that command checked, then frozen as `web.server.serve` does."""
    import gc

    application = create_public_app(Settings.from_env())
    gc.collect()
    gc.freeze()
    return application

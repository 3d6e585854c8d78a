"""The FastAPI application: public pages and API, first-party static files, safe errors."""

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine
from starlette.exceptions import HTTPException
from starlette.routing import Match

from safevine.config import Settings
from safevine.contact_vault import ContactVault
from safevine.i18n import N_, negotiate, translations
from safevine.store.engine import make_engine
from safevine.store.public.connection import make_public_engine
from safevine.store.public.prepared_lookup import PreparedLookups
from safevine.web.client_address import ClientAddresses
from safevine.web.observability import Metrics, Observe
from safevine.web.public import api, pages, registration_api, registration_pages, sms_inbound
from safevine.web.public.search import Searcher
from safevine.web.public.search_fast_path import SearchFastPath
from safevine.web.rate_limits import RateLimiter
from safevine.web.security_headers import SecurityHeaders
from safevine.web.server_errors import ServerErrors
from safevine.web.staff import feeds, holds, persons, report, tokens
from safevine.web.state import AppState

STATIC = Path(__file__).parent / "static"
_INVALID = N_("This value is not valid.")
_NOT_FOUND = N_("Not found.")
_FAILED = N_("Something went wrong on our side. Nothing you entered was kept.")


def create_app(
    settings: Settings, public_engine: Engine | None = None, *, search_fast_path: bool = True
) -> FastAPI:
    """The app. Public routes use `public_engine` (by default one that can read only the
    public views); the staff API alone uses an engine on the full records.
    `search_fast_path=False` leaves every search to the route (tests compare the two)."""
    app = FastAPI(
        title="safevine API",
        version="1",
        # Swagger UI and ReDoc load scripts from third parties; the schema is enough.
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        # FastAPI's own OpenTelemetry hooks: safevine's metrics are Prometheus, and asking
        # for a provider on every request cost about 5% of a search.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    limiter = RateLimiter.from_settings(settings) if settings.rate_limits_enabled else None
    engine = public_engine or make_public_engine(
        settings.database_url, settings.public_database_url
    )
    vault = ContactVault(settings.secret_key, settings.old_secret_keys)
    records = make_engine(settings.database_url)
    metrics = Metrics(engine)
    searcher = Searcher(PreparedLookups(engine), limiter)
    clients = ClientAddresses(settings.trusted_proxies)
    app.state.safevine = AppState(
        settings, engine, limiter, vault, records, metrics, searcher, clients
    )
    # Pure ASGI middleware (no BaseHTTPMiddleware: it costs a task and a wrapped response
    # per request). The last added is outermost: SecurityHeaders wraps Observe, which
    # wraps ServerErrors, so a failure's answer gets the headers and is counted; the
    # search fast path is innermost, so its answers and failures get the same.
    if search_fast_path:
        app.add_middleware(SearchFastPath, state=app.state.safevine)
    app.add_middleware(ServerErrors, answer=_server_error)
    app.add_middleware(Observe, metrics=metrics)
    app.add_middleware(SecurityHeaders, https=settings.public_base_url.startswith("https://"))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    routers = (
        api.router,
        registration_api.router,
        sms_inbound.router,
        pages.router,
        registration_pages.router,
        *(feeds.router, holds.router, persons.router, tokens.router, report.router),
    )
    for router in routers:
        app.include_router(router)
    # Every route, for the Allow header of a 405 (see _allowed_methods).
    app.state.routes = [route for router in routers for route in router.routes]
    app.add_exception_handler(RequestValidationError, _invalid_request)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    return app


def _language(request: Request) -> str:
    return negotiate(request.query_params.get("lang"), request.headers.get("accept-language"))


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


async def _invalid_request(request: Request, error: RequestValidationError) -> Response:
    gettext = translations(_language(request)).gettext
    fields = []
    for problem in error.errors():
        location = [str(part) for part in problem.get("loc", ()) if part not in ("body",)]
        fields.append({"field": ".".join(location) or "body", "message": gettext(_INVALID)})
    return JSONResponse({"errors": fields}, status_code=422)


def _error_headers(request: Request, error: HTTPException) -> dict[str, str]:
    """The error's own headers (WWW-Authenticate on a 401, say), and on a 405 an Allow
    that RFC 9110 requires: every method a route of this path takes. Starlette's names
    only the first route that matched the path (GET of `/`, not its POST), and static
    files answer with none."""
    headers = dict(getattr(error, "headers", None) or {})
    if error.status_code == 405:
        headers = {k: v for k, v in headers.items() if k.lower() != "allow"}
        headers["Allow"] = ", ".join(sorted(_allowed_methods(request)))
    return headers


def _allowed_methods(request: Request) -> set[str]:
    if request.url.path.startswith("/static/"):
        return {"GET", "HEAD"}
    allowed: set[str] = set()
    for route in request.app.state.routes:
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            allowed |= set(getattr(route, "methods", None) or ())
    return allowed or {"GET", "HEAD"}


async def _http_error(request: Request, error: HTTPException) -> Response:
    language = _language(request)
    headers = _error_headers(request, error)
    if request.url.path.startswith(("/api/v1/staff/", "/staff/", "/metrics")):
        # Staff get the reason; the public get only a generic word.
        return JSONResponse(
            {"error": str(error.detail)}, status_code=error.status_code, headers=headers
        )
    if _is_api(request):
        message = translations(language).gettext(
            _NOT_FOUND if error.status_code == 404 else _INVALID
        )
        return JSONResponse({"error": message}, status_code=error.status_code, headers=headers)
    response = pages.page(
        request,
        "message.html",
        language,
        status=error.status_code,
        kind="not_found" if error.status_code == 404 else "bad_request",
    )
    response.headers.update(headers)
    return response


async def _server_error(request: Request) -> Response:
    language = _language(request)
    if _is_api(request):
        return JSONResponse({"error": translations(language).gettext(_FAILED)}, status_code=500)
    return pages.page(request, "message.html", language, status=500, kind="server_error")

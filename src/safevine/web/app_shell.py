"""What the public app and the staff app share: how a FastAPI app is made, the safety
middleware around it, and the answers to a malformed request and to a 405."""

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match

from safevine.i18n import N_, negotiate, translations
from safevine.web.front_door import FrontDoorApp
from safevine.web.observability import Metrics
from safevine.web.safety_layer import Answer, SafetyLayer

# What runs beside an app for its lifetime (the staff service's feed health clock).
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]

_INVALID = N_("This value is not valid.")
# Our own CSS and script, served by both services.
STATIC = Path(__file__).parent / "static"


def new_app(title: str, lifespan: Lifespan | None = None) -> FrontDoorApp:
    return FrontDoorApp(
        title=title,
        lifespan=lifespan,
        version="1",
        # Swagger UI and ReDoc load scripts from third parties; the schema is enough.
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        # FastAPI's own OpenTelemetry hooks: safevine's metrics are Prometheus, and asking
        # for a provider on every request cost about 5% of a search.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )


def guard(app: FastAPI, metrics: Metrics, answer: Answer, https: bool) -> None:
    """The safety layer, outermost of the app's own middleware (pure ASGI, no
    BaseHTTPMiddleware: that costs a task and a wrapped response per request). Middleware
    the app adds before this call sits inside it."""
    app.add_middleware(SafetyLayer, metrics=metrics, answer=answer, https=https)


def include(app: FastAPI, routers: list[object]) -> None:
    """Mount the routers and keep their routes for the Allow header of a 405."""
    routes: list[BaseRoute] = []
    for router in routers:
        app.include_router(router)  # type: ignore[arg-type]
        routes += router.routes  # type: ignore[attr-defined]
    app.state.routes = routes
    app.add_exception_handler(RequestValidationError, invalid_request)  # type: ignore[arg-type]


def language(request: Request) -> str:
    return negotiate(request.query_params.get("lang"), request.headers.get("accept-language"))


async def invalid_request(request: Request, error: RequestValidationError) -> Response:
    gettext = translations(language(request)).gettext
    fields = []
    for problem in error.errors():
        location = [str(part) for part in problem.get("loc", ()) if part not in ("body",)]
        fields.append({"field": ".".join(location) or "body", "message": gettext(_INVALID)})
    return JSONResponse({"errors": fields}, status_code=422)


def error_headers(request: Request, error: HTTPException) -> dict[str, str]:
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

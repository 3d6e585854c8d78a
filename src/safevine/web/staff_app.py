"""The staff service (`safevine staff serve`): the staff JSON API, the reports and
`/metrics`, on a port and origin of its own, meant for an internal network only.

It is the only web process that holds an engine on the full records. Its answers name the
reason for a refusal (staff need it); the public service never does.
"""

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from safevine.config import Settings
from safevine.store.engine import make_engine
from safevine.web.app_shell import error_headers, guard, include, new_app
from safevine.web.observability import Metrics
from safevine.web.staff import feeds, holds, persons, report, screening, tokens
from safevine.web.staff.refusals import answer_refusals
from safevine.web.staff.state import StaffState

DEFAULT_PORT = 8001


def create_staff_app(settings: Settings) -> FastAPI:
    app = new_app("safevine staff API")
    records = make_engine(settings.database_url)
    metrics = Metrics()
    metrics.watch_outbox(records)
    app.state.staff = StaffState(settings, records, metrics)
    # The staff service is reached over TLS by the agency's proxy or on loopback; HSTS
    # follows its own base URL, not the public site's.
    guard(app, metrics, _server_error, https=settings.staff_base_url.startswith("https://"))
    include(
        app,
        [
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
    return app


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

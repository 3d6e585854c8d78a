"""The ceiling for the search benchmark: a bare FastAPI app, served as `safevine serve` is.

One `POST /api/v1/search` that ignores its body and returns a constant JSON body, served
by the very function `safevine serve` uses (`safevine.web.server.serve`: uvicorn in one
process, the same options, the same process set-up): whatever the public search costs
above this is safevine's own.
Usage: python -m bench.ceiling_app PORT
"""

import sys

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from safevine.web.server import serve

BODY: dict[str, list[object]] = {"results": []}


def create_app() -> FastAPI:
    # FastAPI's OpenTelemetry hooks off, as `safevine.web.app_shell` has them: a cost the search
    # no longer pays must not be counted against it in the ceiling either.
    app = FastAPI(
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )

    @app.post("/api/v1/search")
    async def search() -> JSONResponse:
        return JSONResponse(BODY)

    return app


def main(port: int, host: str = "127.0.0.1") -> None:
    # The same call as `safevine serve` makes.
    serve(create_app(), host, port)


if __name__ == "__main__":
    main(int(sys.argv[1]))

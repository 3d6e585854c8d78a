"""The ceiling for the search benchmark: a bare FastAPI app, served as `safevine serve` is.

One `POST /api/v1/search` that ignores its body and returns a constant JSON body, run by
uvicorn in one process with the same options `safevine serve` passes (see
`safevine.cli.serve_cmd`): whatever the public search costs above this is safevine's own.
Usage: python -m bench.ceiling_app PORT
"""

import sys

import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse

BODY: dict[str, list[object]] = {"results": []}


def create_app() -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/api/v1/search")
    async def search() -> JSONResponse:
        return JSONResponse(BODY)

    return app


def main(port: int, host: str = "127.0.0.1") -> None:
    # The same call as `safevine serve` makes, option for option.
    uvicorn.run(
        create_app(),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        server_header=False,
    )


if __name__ == "__main__":
    main(int(sys.argv[1]))

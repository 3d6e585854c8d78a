"""Serving the app with uvicorn, in the foreground or on a loopback port in a thread."""

import gc
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI

from safevine.web.joined_writes import JoinedWritesProtocol

# Every server of safevine's apps runs with these: no Server header; forwarding headers
# read by the app itself, only from SAFEVINE_TRUSTED_PROXIES (web/client_address.py), as
# uvicorn's own trust loopback by default; an answer's writes joined into one
# (web/joined_writes.py).
UVICORN_OPTIONS: dict[str, Any] = {
    "server_header": False,
    "proxy_headers": False,
    "http": JoinedWritesProtocol,
}


def serve(app: FastAPI, host: str, port: int) -> None:
    """Serve `app` in the foreground, as `safevine serve` does (and the search benchmark's
    ceiling, which must be served the same way)."""
    # Everything built so far (modules, the app, its routes and schemas) lives as long as
    # the process: frozen, the collector stops walking it on every full collection, which
    # under load came every few thousand requests and stalled them all for tens of ms.
    gc.collect()
    gc.freeze()
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        **UVICORN_OPTIONS,
    )


def serve_processes(factory: str, host: str, port: int, workers: int) -> None:
    """Serve with `workers` processes on one port (uvicorn's supervisor), each building its
    own app from the environment with `factory` ("module:function")."""
    uvicorn.run(
        factory,
        factory=True,
        workers=workers,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        **UVICORN_OPTIONS,
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@contextmanager
def background_server(
    app: FastAPI,
    host: str = "127.0.0.1",
    port: int | None = None,
    access_log: bool = False,
    lifespan: bool = False,
) -> Iterator[str]:
    """Run `app` on a loopback port until the block ends; yields its base URL. With
    `lifespan`, what the app runs beside itself (the staff service's clock) runs too."""
    chosen = port or free_port(host)
    # log_config=None leaves logging to the host program, whose handlers see every record.
    config = uvicorn.Config(
        app,
        host=host,
        port=chosen,
        log_config=None,
        access_log=access_log,
        lifespan="on" if lifespan else "off",
        log_level="info" if access_log else "warning",
        **UVICORN_OPTIONS,
    )
    if access_log:
        # An earlier server without an access log stops this logger propagating.
        logging.getLogger("uvicorn.access").propagate = True
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"safevine-web-{chosen}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the web server did not start on {host}:{chosen}")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{chosen}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)

"""Serving the app with uvicorn, in the foreground or on a loopback port in a thread."""

import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@contextmanager
def background_server(
    app: FastAPI, host: str = "127.0.0.1", port: int | None = None, access_log: bool = False
) -> Iterator[str]:
    """Run `app` on a loopback port until the block ends; yields its base URL."""
    chosen = port or free_port(host)
    # log_config=None leaves logging to the host program, whose handlers see every record.
    config = uvicorn.Config(
        app,
        host=host,
        port=chosen,
        log_config=None,
        access_log=access_log,
        lifespan="off",
        log_level="info" if access_log else "warning",
        server_header=False,
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

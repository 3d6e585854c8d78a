"""Running a coroutine to its end from a test, on a thread of its own.

Playwright's sync API leaves an event loop running on the thread of a test that used it,
and pytest-xdist runs any test after any other in a worker: `asyncio.run` on the test's
own thread would then refuse to start.

And waiting, bounded, for something another process or thread does.
"""

import asyncio
import subprocess
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def wait_until(
    what: str, done: Callable[[], bool], seconds: float = 60, every: float = 0.1
) -> None:
    """Poll `done` until it is true; fail naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, f"timed out after {seconds} s waiting for {what}"
        time.sleep(every)


def until_answering(
    client: httpx.Client, server: "subprocess.Popen[str]", seconds: float = 60
) -> None:
    """Wait until the server process answers `/` on `client`; fail if it exits first."""

    def answers() -> bool:
        assert server.poll() is None, "the server exited before answering"
        try:
            client.get("/")
        except httpx.TransportError:
            return False
        return True

    wait_until("the server to answer", answers, seconds)

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
    what: str,
    done: Callable[[], Any],
    seconds: float = 60,
    every: float = 0.1,
    seen: Callable[[], str] | None = None,
) -> Any:
    """Poll `done` until it returns something true, and return that; fail naming `what`
    after `seconds`, with what `seen` then describes."""
    deadline = time.monotonic() + seconds
    while not (value := done()):
        if time.monotonic() >= deadline:
            saw = f"; saw:\n{seen()}" if seen else ""
            raise AssertionError(f"timed out after {seconds} s waiting for {what}{saw}")
        time.sleep(every)
    return value


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

"""Running a coroutine to its end from a test, on a thread of its own.

Playwright's sync API leaves an event loop running on the thread of a test that used it,
and pytest-xdist runs any test after any other in a worker: `asyncio.run` on the test's
own thread would then refuse to start.
"""

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()

"""Providers' reports on messages (a text's receipt, a call's status), applied in batches.

A provider posts one report per message, often many a second. Each used to be a
transaction of its own, so on SQLite, where a worker holds the one write lock while a
batch of texts is on the wire, they went in one by one between the worker's batches and
fell behind the texts. Here every report a public process has received waits in one
queue, and one thread applies all that are waiting in one transaction, in the turn a
protection's priority leaves (`store.write_priority.claim_turn`). A report is answered
only once its transaction has committed, so a provider that hears 204 can forget it.

A report can overtake the worker's record of the message it is about (a busy line
answers in milliseconds): it is looked for again, `receipts.LOOKS` times, `LOOK_EVERY`
apart, before it is applied as it stands (it then finds nothing and changes nothing, or,
for a call, names its attempt by key: `store.public.calls`). A report that fails is tried
alone, so it never takes the others of its batch down with it.

The thread stops by itself once it has had nothing to do for `IDLE_SECONDS`, and starts
again with the next report.
"""

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, Engine

from safevine.domain.retry_policy import next_delay
from safevine.store.public import receipts
from safevine.store.write_priority import claim_turn

log = logging.getLogger("safevine.web")

RetryAfter = Callable[[int], timedelta | None]
Apply = Callable[[Connection, RetryAfter], Any]
# Reports in one transaction at most: a long transaction would hold the worker back.
BATCH = 500
IDLE_SECONDS = 5.0


@dataclass
class _Report:
    provider_id: str
    apply: Apply
    future: "Future[Any]"
    looks: int = 0
    not_before: float = 0.0


@dataclass
class ReportBatches:
    """The queue of one public process. `engine` is its public engine."""

    engine: Engine
    retry_base_seconds: float
    _queue: "queue.SimpleQueue[_Report]" = field(default_factory=queue.SimpleQueue)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None

    async def apply(self, provider_id: str, apply: Apply) -> Any:
        """`apply(connection, retry_after)` for the report on `provider_id`, once the
        worker has recorded that message; its result, after the commit."""
        future: Future[Any] = Future()
        self._queue.put(_Report(provider_id.strip()[:200], apply, future))
        self._ensure_running()
        return await asyncio.wrap_future(future)

    def _ensure_running(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="provider-reports", daemon=True
                )
                self._thread.start()

    def _retry_after(self, tries: int) -> timedelta | None:
        return next_delay(tries, None, timedelta(seconds=self.retry_base_seconds))

    def _run(self) -> None:
        waiting: list[_Report] = []
        idle_since = time.monotonic()
        while True:
            now = time.monotonic()
            next_due = min((r.not_before for r in waiting), default=now + IDLE_SECONDS)
            with contextlib.suppress(queue.Empty):
                waiting.append(self._queue.get(timeout=max(0.0, next_due - now)))
            while len(waiting) < BATCH * 4:
                try:
                    waiting.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            now = time.monotonic()
            due = [r for r in waiting if r.not_before <= now][:BATCH]
            if not due:
                if not waiting and now - idle_since >= IDLE_SECONDS:
                    with self._lock:
                        # A report queued just now would find this thread still alive.
                        if self._queue.empty():
                            self._thread = None
                            return
                continue
            idle_since = now
            taken = {id(r) for r in due}
            waiting = [r for r in waiting if id(r) not in taken]
            waiting.extend(self._apply(due))

    def _apply(self, due: list[_Report]) -> list[_Report]:
        """Apply `due` in one transaction; the reports to look for again later."""
        later: list[_Report] = []
        done: list[tuple[_Report, Any]] = []
        try:
            with self.engine.begin() as connection:
                claim_turn(connection)
                for report in due:
                    if self._overtook(connection, report):
                        later.append(report)
                    else:
                        done.append((report, report.apply(connection, self._retry_after)))
        except Exception:
            log.warning("a batch of %d provider reports failed: each goes alone", len(due))
            return self._one_by_one(due)
        for report, result in done:
            _settle(report.future, result)
        return later

    def _overtook(self, connection: Connection, report: _Report) -> bool:
        """Whether the report came before the worker's record of its message, and may
        still wait for it."""
        if (
            not report.provider_id
            or report.looks >= receipts.LOOKS - 1
            or receipts.known(connection, report.provider_id)
        ):
            return False
        report.looks += 1
        report.not_before = time.monotonic() + receipts.LOOK_EVERY
        return True

    def _one_by_one(self, due: list[_Report]) -> list[_Report]:
        later: list[_Report] = []
        for report in due:
            try:
                with self.engine.begin() as connection:
                    claim_turn(connection)
                    if self._overtook(connection, report):
                        later.append(report)
                        continue
                    result = report.apply(connection, self._retry_after)
            except Exception as error:
                _settle(report.future, error=error)
            else:
                _settle(report.future, result)
        return later


def _settle(future: "Future[Any]", result: Any = None, error: Exception | None = None) -> None:
    # The caller may have gone (its request cancelled): the report was applied all the same.
    if future.cancelled() or future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)

"""SQLite's search lookups in a process beside the web process, awaited on the serving loop.

A SQLite lookup runs in the process that asks, on its thread: over HTTP it cost the
serving thread some 65-70 µs a search, half of all a search cost it (BENCHMARKS.md,
search, twelfth session). PostgreSQL's lookups cost the web process only the sending and
the reading, as its server does the work on the other core; here a lookup process
(`lookup_worker`) plays the server's part. The lookups waiting go to it in batches of a
few, two batches at most unanswered at a time, and each batch's answers come back
together: one write and one read on a pipe for each batch.

The lookup process runs this process's own compiled statements on the same file, with the
public grants and nothing more (`sqlite_grants`), each statement its own read of what is
committed: a protection committed before a lookup begins is seen by it, as in the web
process. One per web process (`SAFEVINE_SEARCH_LOOKUP_PROCESS`, on by default for
`safevine serve`); it starts with the first search and ends with the engine (`dispose()`)
or when this process ends (its stdin closes). One that
ends or answers nonsense is replaced, and the lookups it had not answered are asked once
more of a new one; a second failure is their answer (`LookupProcessError`, which names the
type of the error only: its text may hold what was searched for).
"""

import asyncio
import contextlib
import os
import subprocess
import sys
import weakref
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, event

from safevine.store.public.lookup import SEARCHES
from safevine.store.public.lookup_wire import Answer, Ask, Batch, answers, frame, take_frame
from safevine.store.public.lookup_worker import PATH_VARIABLE
from safevine.store.public.prepared_lookup import PreparedStatement
from safevine.store.public.waiting_lookups import AwaitedSearches, Rows, Waiting, take_batch

PYTHON = sys.executable
# Batches sent before the one before is answered: the lookup process runs the next while
# this process answers the searches of the last (`waiting_lookups.BATCH_MAX`).
IN_FLIGHT = 2


class LookupProcessError(RuntimeError):
    """A lookup the lookup process could not answer; the message names the error's type."""


@dataclass(eq=False)
class _Asked(Waiting):
    ask: Ask
    sql: str


class _Worker:
    """One lookup process and what it has sent back so far."""

    def __init__(self, path: str) -> None:
        # The process finds safevine where this one did, whatever set its path.
        search_path = os.pathsep.join(p for p in sys.path if p)
        self.process = subprocess.Popen(  # noqa: S603 - this interpreter, a fixed module
            [PYTHON, "-m", "safevine.store.public.lookup_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": search_path, PATH_VARIABLE: path},
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.stdin = self.process.stdin.fileno()
        self.stdout = self.process.stdout.fileno()
        os.set_blocking(self.stdout, False)
        self.received = bytearray()
        self.ended = False
        # The statements it has been given, by number.
        self.given: set[int] = set()
        # Its answers are watched for as long as it runs, by the loop that last asked:
        # a reader registered and taken off again for every batch cost a good part of one.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiter: asyncio.Future[None] | None = None
        # Ended with this object at the latest (and so as the web process ends).
        self._finalizer = weakref.finalize(self, _end, self.process)

    async def answer(self) -> bytes:
        """The next frame the process sends."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._unwatch()
            loop.add_reader(self.stdout, self._on_readable)
            self._loop = loop
        while True:
            taken = take_frame(self.received)
            if taken is not None:
                return taken
            if self.ended:
                raise EOFError("the lookup process ended")
            self._waiter = loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def _on_readable(self) -> None:
        try:
            data = os.read(self.stdout, 1 << 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self.received += data
        else:
            self.ended = True
            self._unwatch()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _unwatch(self) -> None:
        if self._loop is not None:
            # A loop already closed has let go of its readers.
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self.stdout)
            self._loop = None

    def end(self) -> None:
        self._unwatch()
        self._finalizer()
        # A batch waiting for its answer is told at once (it is asked again elsewhere).
        self.ended = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


def _end(process: "subprocess.Popen[bytes]") -> None:
    process.kill()
    with contextlib.suppress(Exception):
        process.wait(5)
    for pipe in (process.stdin, process.stdout):
        if pipe is not None:
            with contextlib.suppress(Exception):
                pipe.close()


class ProcessLookups(AwaitedSearches):
    """`lookup.by_a_number` and `lookup.by_name` on SQLite, as coroutines answered by a
    lookup process."""

    blocks = True

    def __init__(self, engine: Engine) -> None:
        if engine.dialect.name != "sqlite":
            raise ValueError("a lookup process is for SQLite")
        if not engine.url.database or engine.url.database == ":memory:":
            raise ValueError("a lookup process needs a database file")
        self._engine = engine
        self._path = engine.url.database
        searches = SEARCHES["sqlite"]
        self._by_a_number = PreparedStatement(searches.by_a_number, engine.dialect)
        self._by_name = PreparedStatement(searches.by_name, engine.dialect)
        # Each statement's SQL by number, as the lookup processes are given them.
        self._numbers: dict[str, int] = {}
        self._worker: _Worker | None = None
        self._pending: deque[_Asked] = deque()
        # Batches sent and not yet answered, with the process each went to, oldest first.
        self._flight: deque[tuple[_Worker, list[_Asked]]] = deque()
        self._sender: asyncio.Task[None] | None = None
        self._receiver: asyncio.Task[None] | None = None
        # Set when a batch in flight is answered, for a sender waiting for room.
        self._room: asyncio.Future[None] | None = None
        self._ids = 0
        event.listen(engine, "engine_disposed", self._on_dispose)

    @property
    def running(self) -> bool:
        """Whether a lookup process is running now."""
        return self._worker is not None and self._worker.process.poll() is None

    def close(self) -> None:
        """End the lookup process; a later search starts another."""
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.end()

    def _on_dispose(self, _engine: Engine) -> None:
        self.close()

    async def _run(self, statement: PreparedStatement, values: Mapping[str, Any]) -> Rows:
        sql, parameters = statement.bind(values)
        assert isinstance(parameters, tuple)  # SQLite's are positional
        dispatch = self._engine.dispatch
        if dispatch.before_cursor_execute:
            dispatch.before_cursor_execute(None, None, sql, parameters, None, False)
        number = self._numbers.setdefault(sql, len(self._numbers))
        self._ids += 1
        asked = _Asked(Ask(self._ids, number, parameters), sql)
        self._pending.append(asked)
        self._start_sending()
        fetched = await asked.answer
        if dispatch.after_cursor_execute:
            dispatch.after_cursor_execute(None, None, sql, parameters, None, False)
        return statement.convert(fetched)

    def _start_sending(self) -> None:
        if self._sender is None and self._pending:
            self._sender = asyncio.get_running_loop().create_task(self._send_waiting())

    async def _send_waiting(self) -> None:
        """Send what is waiting, `BATCH_MAX` at a time, while fewer than `IN_FLIGHT`
        batches are unanswered."""
        try:
            # The searches started in this turn of the loop join the first batch.
            await asyncio.sleep(0)
            while self._pending:
                if len(self._flight) >= IN_FLIGHT:
                    self._room = asyncio.get_running_loop().create_future()
                    try:
                        await self._room
                    finally:
                        self._room = None
                    continue
                batch = take_batch(self._pending)
                if batch:
                    self._post(batch)
        finally:
            self._sender = None

    def _post(self, batch: list[_Asked]) -> None:
        worker = self._worker
        try:
            if worker is None or worker.ended or worker.process.poll() is not None:
                self.close()
                worker = self._worker = _Worker(self._path)
            given = worker.given
            new = {a.ask.statement: a.sql for a in batch if a.ask.statement not in given}
            data = memoryview(frame(Batch([asked.ask for asked in batch], new)))
            while data:
                data = data[os.write(worker.stdin, data) :]
        except Exception as error:
            self._failed(worker, error, batch)
            return
        given.update(new)
        self._flight.append((worker, batch))
        if self._receiver is None:
            self._receiver = asyncio.get_running_loop().create_task(self._receive())

    async def _receive(self) -> None:
        """Answer the batches in flight, in the order they were sent, as the process does."""
        try:
            while self._flight:
                worker, batch = self._flight[0]
                try:
                    got = answers.decode(await worker.answer())
                except asyncio.CancelledError:
                    # Cancelled mid-answer (the loop is closing): what the process sends
                    # next would be this batch's answer, so nothing is asked again.
                    self.close()
                    raise
                except Exception as error:
                    self._failed(worker, error)
                    continue
                self._flight.popleft()
                self._make_room()
                self._settle(batch, got)
        finally:
            self._receiver = None

    def _make_room(self) -> None:
        """Wake the sender if it waits for a batch in flight to end."""
        if self._room is not None and not self._room.done():
            self._room.set_result(None)

    @staticmethod
    def _settle(batch: list[_Asked], got: list[Answer]) -> None:
        by_id = {answer.id: answer for answer in got}
        for asked in batch:
            answer = by_id.get(asked.ask.id)
            if answer is None:
                asked.settle(error=LookupProcessError("no answer"))
            elif answer.error is not None:
                asked.settle(error=LookupProcessError(answer.error))
            else:
                asked.settle(answer.rows)

    def _failed(self, worker: _Worker | None, error: Exception, *unsent: list[_Asked]) -> None:
        """The process ended, could not start, or answered nonsense: it is replaced, and
        the lookups it held (and `unsent`) are asked once more of the new one, in the
        order they were asked; a second failure is their answer."""
        if worker is not None and worker is self._worker:
            self.close()
        elif worker is not None:
            worker.end()
        lost = [batch for sent_to, batch in self._flight if sent_to is worker]
        self._flight = deque(f for f in self._flight if f[0] is not worker)
        self._make_room()
        failure = LookupProcessError(type(error).__name__)
        for batch in reversed([*lost, *unsent]):
            for asked in reversed(batch):
                if asked.again:
                    asked.settle(error=failure)
                else:
                    asked.again = True
                    self._pending.appendleft(asked)
        self._start_sending()

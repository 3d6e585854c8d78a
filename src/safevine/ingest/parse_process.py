"""Parsing a feed's chunks in a second process while this one applies the chunk before.

Converting a record (decoding its JSON, checking its fields, building its event) is a
fifth of what an event feed costs the process that writes it (BENCHMARKS.md, event
ingest), and on SQLite nothing else can overlap the writes. So on a machine with a second
core every chunk after the first is converted in a child process (`parse_worker`) while
this one applies the chunk before. Only the conversion moves: the feed is still read
here, so what is read ahead, where an overlong line's reject goes and how a failure to
read surfaces stay as `ingest.events` describes. The first chunk is parsed here, so a
feed of one chunk starts no process.

The child is only a way to use the second core. If it cannot be started, dies, or fails
a chunk, that chunk and the rest of the feed are parsed here, with a warning naming the
error's type. It logs nothing itself: its log records come back with each chunk and are
logged here, by this process's handlers. The parsed records come back as `parsed_wire`
encodes them, or pickled when they cannot go that way exactly.
"""

import logging
import os
import pickle
import subprocess
import sys
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import IO, Any, Generic, TypeVar, cast

from safevine.failures import describe
from safevine.ingest.parsed import Parsed
from safevine.ingest.parsed_wire import decode_events

log = logging.getLogger("safevine.ingest")

T = TypeVar("T")

# How long a child that was asked to stop may take before it is killed.
_STOP_SECONDS = 10


def parse_chunk(convert: Callable[[Any], Parsed[T]], units: Sequence[Any]) -> list[Parsed[T]]:
    """Each unit converted; one that is already a Parsed (an overlong line's reject) as is."""
    return [unit if isinstance(unit, Parsed) else convert(unit) for unit in units]


class Pending(Generic[T]):
    """A chunk being parsed; `result()` waits for it (and gives the same list every time)."""

    def __init__(
        self,
        parsed: list[Parsed[T]] | None = None,
        receive: Callable[[], list[Parsed[T]]] | None = None,
    ) -> None:
        self._parsed, self._receive = parsed, receive

    def result(self) -> list[Parsed[T]]:
        if self._parsed is None:
            assert self._receive is not None
            self._parsed, self._receive = self._receive(), None
        return self._parsed


class ChunkParser(Generic[T]):
    """Parses chunks with `convert`, a module-level function (the child imports it by name)
    that takes one record as read (any of the units `parse_chunk` takes but a Parsed).

    `second_process`: None uses one when the machine has more than one core.
    """

    def __init__(
        self, convert: Callable[[Any], Parsed[T]], *, second_process: bool | None = None
    ) -> None:
        self._convert = convert
        self._wanted = (os.cpu_count() or 1) > 1 if second_process is None else second_process
        self._child: subprocess.Popen[bytes] | None = None
        self._in_flight: Pending[T] | None = None
        self._chunks = 0
        # Chunks the child parsed (and sent back whole), and of them those it sent as
        # `parsed_wire` encodes them rather than pickled.
        self.parsed_in_child = 0
        self.sent_on_wire = 0

    def __enter__(self) -> "ChunkParser[T]":
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def parse(self, units: list[Any]) -> Pending[T]:
        """Start parsing `units`: the first chunk here and now, later ones in the child."""
        self._chunks += 1
        if self._chunks == 1 or not self._wanted:
            return Pending(parse_chunk(self._convert, units))
        if self._in_flight is not None:
            self._in_flight.result()
        try:
            requests = cast(IO[bytes], self._started().stdin)
            pickle.dump((self._convert, units), requests, pickle.HIGHEST_PROTOCOL)
            requests.flush()
        except Exception as error:
            self._give_up(error)
            return Pending(parse_chunk(self._convert, units))
        self._in_flight = Pending(receive=lambda: self._received(units))
        return self._in_flight

    def close(self) -> None:
        """Stop the child: its pipes closed, it ends; one that does not in time is killed."""
        child, self._child = self._child, None
        self._wanted = False
        if child is None:
            return
        for pipe in (child.stdout, child.stdin):
            try:
                if pipe is not None:
                    pipe.close()
            except OSError:
                pass  # the child is already gone: nothing was waiting to be read
        try:
            child.wait(_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()

    def _started(self) -> "subprocess.Popen[bytes]":
        if self._child is None:
            # The child finds safevine where this process did, whatever set its path.
            environment = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
            self._child = subprocess.Popen(  # noqa: S603 - this interpreter, a fixed module
                [sys.executable, "-m", "safevine.ingest.parse_worker", str(_log_level())],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=environment,
            )
        return self._child

    def _received(self, units: list[Any]) -> list[Parsed[T]]:
        self._in_flight = None
        try:
            child = self._child
            if child is None:
                raise RuntimeError("the parsing process was stopped")
            answers = cast(IO[bytes], child.stdout)
            size = int.from_bytes(_exactly(answers, 8), "little")
            data = _exactly(answers, size)
            # From the child this process started, over its own pipe.
            answer: tuple[str, Any, list[logging.LogRecord]] = pickle.loads(data)  # noqa: S301
            outcome, value, records = answer
            if outcome == "wire":
                outcome, value = "parsed", decode_events(value)
                self.sent_on_wire += 1
        except Exception as error:
            self._give_up(error)
            return parse_chunk(self._convert, units)
        for record in records:
            logger = logging.getLogger(record.name)
            if logger.isEnabledFor(record.levelno):
                logger.handle(record)
        if outcome != "parsed":
            # The child named the error (by its type only); parsing here raises it again,
            # or gives the chunk if the fault was the child's.
            self._give_up(RuntimeError(str(value)))
            return parse_chunk(self._convert, units)
        self.parsed_in_child += 1
        return cast(list[Parsed[T]], value)

    def _give_up(self, error: BaseException) -> None:
        log.warning(
            "the feed's parsing process failed; the rest of the feed is parsed here",
            extra=describe(error),
        )
        self.close()


def _exactly(stream: IO[bytes], size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise EOFError("the parsing process ended")
    return data


def _log_level() -> int:
    return logging.getLogger("safevine").getEffectiveLevel()

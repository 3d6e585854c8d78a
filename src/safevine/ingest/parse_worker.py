"""The child process of `parse_process`: reads (convert, units) pickles on its standard input
and answers each with ("wire", the records as `parsed_wire` encodes them, log records) or,
for records that cannot go that way, ("parsed", records, log records), or ("failed", the
error's type, log records) for a chunk it could not parse, until its input ends.

Run as `python -m safevine.ingest.parse_worker LEVEL`, by `parse_process` only: what it
reads is trusted, as it comes from the process that started it, over a pipe.
"""

import contextlib
import gc
import logging
import os
import pickle
import signal
import sys
from typing import IO, Any

from safevine.ingest.collector import COLLECT_EVERY
from safevine.ingest.parse_process import parse_chunk
from safevine.ingest.parsed_wire import encode_events


class _Kept(logging.Handler):
    """Keeps each log record, made safe to send (its message formatted, no exception)."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        record.msg, record.args = record.getMessage(), None
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        self.records.append(record)

    def take(self) -> list[logging.LogRecord]:
        taken, self.records = self.records, []
        return taken


def serve(requests: IO[bytes], answers: IO[bytes], kept: _Kept) -> None:
    # A chunk's records all live until it is sent; they are freed by reference counting
    # (see `collector`), and a rare cycle by a collection every few chunks.
    gc.disable()
    done = 0
    while True:
        try:
            convert, units = pickle.load(requests)  # noqa: S301 - from the parent's pipe
        except EOFError:
            return
        answer: tuple[str, Any]
        try:
            parsed = parse_chunk(convert, units)
            wire = encode_events(parsed)
            answer = ("parsed", parsed) if wire is None else ("wire", wire)
            del parsed, wire
        except Exception as error:
            answer = ("failed", type(error).__name__)
        del convert, units
        # Pickled whole before it is written: written as it is pickled, the pickling would
        # wait on the pipe, that is on the parent, which waits for it.
        try:
            data = pickle.dumps((*answer, kept.take()), pickle.HIGHEST_PROTOCOL)
        except Exception as error:
            data = pickle.dumps(("failed", type(error).__name__, []), pickle.HIGHEST_PROTOCOL)
        del answer
        answers.write(len(data).to_bytes(8, "little"))
        answers.write(data)
        answers.flush()
        del data
        done += 1
        if done % COLLECT_EVERY == 0:
            gc.collect()


def main() -> None:
    # Ctrl-C reaches the whole process group: the parent handles it and closes the pipes,
    # which ends this process without a traceback of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    kept = _Kept()
    root = logging.getLogger()
    root.handlers = [kept]
    logging.getLogger("safevine").setLevel(int(sys.argv[1]))
    # Answers go on the standard output as it was; anything else written there goes to the
    # standard error, so it cannot corrupt them.
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    # A broken pipe: the parent stopped reading, closed its end and wants this one gone.
    with contextlib.suppress(BrokenPipeError):
        serve(sys.stdin.buffer, answers, kept)


if __name__ == "__main__":
    main()

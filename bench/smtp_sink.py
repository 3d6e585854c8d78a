"""An SMTP sink for the delivery benchmark, run in its own process so that it never shares a
GIL with what is measured: it accepts every message and appends one line per message to a
file, `<unix time of acceptance> <Message-ID>`.

Run as `python -m bench.smtp_sink RECORD_FILE`; it binds a free port on 127.0.0.1, prints
`ready <port>` on stdout, and stops when a line `stop` arrives on stdin or stdin closes
(which is what happens when the parent dies). `SmtpSinkProcess` does all of that for a
parent.
"""

import asyncio
import contextlib
import ctypes
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from aiosmtpd.smtp import SMTP

MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.IGNORECASE | re.MULTILINE)
SIMPLE_ADDRESS = re.compile(r"\s*<([^<>@\s\"]+@[^<>@\s\"]+)>(.*)")
FLUSH_SECONDS = 0.05


class FastSMTP(SMTP):
    """aiosmtpd's server with a cheap path for the plain `<local@domain>` addresses every
    client here sends: its own parser (the email package's header parser, plus a class
    defined on every call) took a quarter of the sink's time. Anything else goes to it."""

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        plain = SIMPLE_ADDRESS.fullmatch(arg)
        if plain is None:
            return super()._getaddr(arg)
        return plain.group(1), plain.group(2)


class Recorder:
    """The aiosmtpd handler: notes each accepted message, flushing the file every 50 ms."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.lines: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        # Only the headers are searched: the body is never parsed, to keep the sink cheap.
        content: bytes = envelope.original_content or envelope.content
        head = content.split(b"\r\n\r\n", 1)[0]
        found = MESSAGE_ID.search(head)
        message_id = found.group(1).decode("ascii", "replace") if found else "-"
        self.lines.append(f"{time.time():.6f} {message_id}\n")
        return "250 OK accepted"

    def flush(self) -> None:
        if self.lines:
            lines, self.lines = self.lines, []
            self.out.write("".join(lines))
            self.out.flush()


def _die_with_parent() -> None:
    """Linux: SIGTERM this process when its parent exits (PR_SET_PDEATHSIG = 1)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)


async def serve(record: Path) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def watch_stdin() -> None:
        # EOF (the parent closed the pipe or died) or an explicit `stop` line.
        for line in sys.stdin:
            if line.strip() == "stop":
                break
        loop.call_soon_threadsafe(stop.set)

    with record.open("a", encoding="ascii") as out:
        recorder = Recorder(out)
        server = await loop.create_server(
            lambda: FastSMTP(recorder, hostname="sink.bench", ident="bench sink"),
            host="127.0.0.1",
            port=0,
        )
        port = server.sockets[0].getsockname()[1]
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        threading.Thread(target=watch_stdin, daemon=True).start()
        print(f"ready {port}", flush=True)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), FLUSH_SECONDS)
            recorder.flush()
        server.close()
        recorder.flush()


def main() -> None:
    _die_with_parent()
    if os.getppid() == 1:
        return
    asyncio.run(serve(Path(sys.argv[1])))


class SmtpSinkProcess:
    """The sink in a child process; read what it accepted with `accepted()`/`count()`."""

    def __init__(self, record: Path, python: str = sys.executable) -> None:
        self.record = record
        record.write_text("")
        root = Path(__file__).resolve().parent.parent
        self.process = subprocess.Popen(
            [python, "-m", "bench.smtp_sink", str(record)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=root,
            env={**os.environ, "PYTHONPATH": str(root)},
        )
        assert self.process.stdout is not None
        ready = self.process.stdout.readline().split()
        if len(ready) != 2 or ready[0] != "ready":
            self.stop()
            raise RuntimeError(f"the SMTP sink did not start: {ready!r}")
        self.port = int(ready[1])
        self._offset = 0
        self._count = 0

    @property
    def pid(self) -> int:
        return self.process.pid

    def count(self) -> int:
        """Messages accepted so far (reads only what was appended since the last call)."""
        with self.record.open("rb") as handle:
            handle.seek(self._offset)
            chunk = handle.read()
        self._offset += len(chunk)
        self._count += chunk.count(b"\n")
        return self._count

    def wait_for(self, count: int, timeout: float, poll: float = 0.02) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.count() >= count:
                return True
            if self.process.poll() is not None:
                raise RuntimeError(f"the SMTP sink exited with {self.process.returncode}")
            time.sleep(poll)
        return self.count() >= count

    def accepted(self) -> list[tuple[float, str]]:
        """Every (time, Message-ID) recorded so far, in order of acceptance."""
        out = []
        for line in self.record.read_text(encoding="ascii").splitlines():
            at, _, message_id = line.partition(" ")
            out.append((float(at), message_id))
        return out

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                assert self.process.stdin is not None
                self.process.stdin.write("stop\n")
                self.process.stdin.close()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError, ValueError):
                    stream.close()

    def __enter__(self) -> "SmtpSinkProcess":
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()


if __name__ == "__main__":
    main()

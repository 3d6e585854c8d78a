"""A Twilio-compatible SMS provider for the receipts benchmark, in a process of its own so it
never shares a GIL with what is measured. It takes every text (answering with a sid) and,
for each one with a StatusCallback, posts a signed `delivered` receipt to it, as a carrier
would, DELAY seconds after it took the text. One line per receipt goes to the record file:
`<sid> <taken> <receipt posted> <receipt answered> <HTTP status>` (unix times).

Run as `python -m bench.sms_provider RECORD_FILE TOKEN [DELAY]`; it prints `ready <port>`
and stops when stdin closes (the parent died or said `stop`). `SmsProviderProcess` does
all that.
"""

import asyncio
import contextlib
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO

import aiohttp
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from safevine.web.public.sms_inbound import twilio_signature
from safevine.web.server import free_port

# Receipts in flight at once, as a provider's callback fleet would send them.
SENDERS = 64


def main() -> None:
    record, token = Path(sys.argv[1]), sys.argv[2]
    delay = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    out = record.open("w", buffering=1)
    queue: asyncio.Queue[tuple[str, float, str]] = asyncio.Queue()
    taken = 0

    async def messages(request: Request) -> JSONResponse:
        nonlocal taken
        form = {k: str(v) for k, v in (await request.form()).items()}
        taken += 1
        sid = f"SM{taken:010d}"
        if form.get("StatusCallback"):
            # Queued for the senders once the carrier has had the text for `delay`.
            item = (sid, time.time(), form["StatusCallback"])
            asyncio.get_running_loop().call_later(delay, queue.put_nowait, item)
        return JSONResponse({"sid": sid}, status_code=201)

    async def sender(client: aiohttp.ClientSession) -> None:
        while True:
            sid, at, url = await queue.get()
            form = {"MessageSid": sid, "MessageStatus": "delivered"}
            headers = {"X-Twilio-Signature": twilio_signature(token, url, form)}
            posted = time.time()
            try:
                async with client.post(url, data=form, headers=headers) as answer:
                    await answer.read()
                    status = answer.status
            except (aiohttp.ClientError, TimeoutError):
                status = 0
            out.write(f"{sid} {at:.6f} {posted:.6f} {time.time():.6f} {status}\n")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # aiohttp, as the worker uses for providers: httpx's CPU per request would make
        # this process, not the service, what limits the receipts.
        client = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=30),
            connector=aiohttp.TCPConnector(limit=SENDERS),
        )
        senders = [asyncio.create_task(sender(client)) for _ in range(SENDERS)]
        yield
        for task in senders:
            task.cancel()
        await client.close()

    app = Starlette(
        routes=[Route("/2010-04-01/Accounts/{account}/Messages.json", messages, methods=["POST"])],
        lifespan=lifespan,
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )

    def watch_stdin() -> None:
        for line in sys.stdin:
            if line.strip() == "stop":
                break
        server.should_exit = True

    threading.Thread(target=watch_stdin, daemon=True).start()
    print(f"ready {port}", flush=True)
    server.run()


class SmsProviderProcess:
    def __init__(self, record: Path, token: str, delay: float = 0.0) -> None:
        self.record = record
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.sms_provider", str(record), token, str(delay)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("ready "):
            raise RuntimeError(f"the SMS provider did not start: {line!r}")
        self.port = int(line.split()[1])
        self.base = f"http://127.0.0.1:{self.port}"

    def receipts(self) -> list[tuple[str, float, float, float, int]]:
        rows = []
        for line in self.record.read_text().splitlines():
            parts = line.split()
            if len(parts) == 5:
                rows.append(
                    (parts[0], float(parts[1]), float(parts[2]), float(parts[3]), int(parts[4]))
                )
        return rows

    def stop(self) -> None:
        stdin: IO[str] | None = self.process.stdin
        if stdin is not None and self.process.poll() is None:
            try:
                stdin.write("stop\n")
                stdin.close()
            except BrokenPipeError:
                pass
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


if __name__ == "__main__":
    main()

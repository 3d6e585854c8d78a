"""An answer's writes joined into one (`web/joined_writes.py`): on a transport that records
what it is given, and through a real server on a loopback socket."""

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse, StreamingResponse

from safevine.web.joined_writes import HOLD_BYTES, JoinedWrites, JoinedWritesProtocol
from safevine.web.server import UVICORN_OPTIONS, background_server


class Recording(asyncio.Transport):
    """What reaches the socket, in order: ("write", bytes), ("close",), ("abort",), ("eof",)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[Any, ...]] = []
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.calls.append(("write", bytes(data)))

    def close(self) -> None:
        self.closing = True
        self.calls.append(("close",))

    def abort(self) -> None:
        self.closing = True
        self.calls.append(("abort",))

    def write_eof(self) -> None:
        self.calls.append(("eof",))

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return 7


def _run(steps: Any) -> list[tuple[Any, ...]]:
    """Run `steps(joined)` in a fresh loop, then let every due write go out. On a thread of
    its own: the test's thread may have a loop left running (Playwright's sync API)."""
    recording = Recording()

    async def main() -> None:
        joined = JoinedWrites(recording, asyncio.get_running_loop())
        await steps(joined)
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    with ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, main()).result()
    return recording.calls


def test_the_writes_of_one_turn_leave_together_at_the_next() -> None:
    seen: list[list[tuple[Any, ...]]] = []

    async def steps(joined: JoinedWrites) -> None:
        joined.write(b"HTTP/1.1 200 OK\r\n\r\n")
        joined.write(bytearray(b"{}"))
        joined.writelines([memoryview(b"a"), b"b"])
        joined.write(b"")
        seen.append(list(joined._transport.calls))  # type: ignore[attr-defined]
        assert joined.get_write_buffer_size() == 7 + 23

    assert _run(steps) == [("write", b"HTTP/1.1 200 OK\r\n\r\n{}ab")]
    assert seen == [[]]  # nothing left before the turn ended


def test_writes_of_separate_turns_leave_separately() -> None:
    async def steps(joined: JoinedWrites) -> None:
        joined.write(b"one")
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        joined.write(b"two")

    assert _run(steps) == [("write", b"one"), ("write", b"two")]


def test_close_and_eof_send_what_is_held_first_and_abort_drops_it() -> None:
    async def closing(joined: JoinedWrites) -> None:
        joined.write(b"last words")
        joined.close()

    async def ending(joined: JoinedWrites) -> None:
        joined.write(b"half")
        joined.write_eof()

    async def aborting(joined: JoinedWrites) -> None:
        joined.write(b"never sent")
        joined.abort()

    assert _run(closing) == [("write", b"last words"), ("close",)]
    assert _run(ending) == [("write", b"half"), ("eof",)]
    assert _run(aborting) == [("abort",)]


def test_a_large_write_is_not_held_and_keeps_the_order() -> None:
    big = b"x" * HOLD_BYTES

    async def steps(joined: JoinedWrites) -> None:
        joined.write(b"head")
        joined.write(big)
        assert joined._transport.calls == [("write", b"head" + big)]  # type: ignore[attr-defined]
        joined.write(b"tail")

    assert _run(steps) == [("write", b"head" + big), ("write", b"tail")]


def test_nothing_is_written_to_a_transport_closed_meanwhile() -> None:
    async def steps(joined: JoinedWrites) -> None:
        joined.write(b"to a peer that left")
        joined._transport.closing = True  # type: ignore[attr-defined]

    assert _run(steps) == []


# Through a real server -----------------------------------------------------------------


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/small")
    async def small() -> PlainTextResponse:
        return PlainTextResponse("small answer")

    @app.get("/large")
    async def large() -> PlainTextResponse:
        return PlainTextResponse("L" * (3 * HOLD_BYTES + 17))

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for i in range(200):
                yield f"{i:05d}".encode() * 2000

        return StreamingResponse(chunks(), media_type="text/plain")

    return app


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, list[int]]]:
    """A real server; and how many writes reached each connection's socket."""
    writes: list[int] = []
    made = JoinedWritesProtocol.connection_made

    class Counted:
        """The socket's transport, counting the writes that reach it."""

        def __init__(self, transport: asyncio.Transport, index: int) -> None:
            self._transport, self._index = transport, index

        def write(self, data: bytes) -> None:
            writes[self._index] += 1
            self._transport.write(data)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._transport, name)

    def counted(self: JoinedWritesProtocol, transport: asyncio.Transport) -> None:
        writes.append(0)
        made(self, Counted(transport, len(writes) - 1))  # type: ignore[arg-type]

    monkeypatch.setattr(JoinedWritesProtocol, "connection_made", counted)
    with background_server(_app()) as base:
        yield base, writes


def _exchange(base: str, request: bytes, shut: bool = False) -> bytes:
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(request)
        if shut:
            connection.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
        return received


def _get(path: str, close: bool = True) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: x\r\n{'Connection: close' if close else ''}\r\n\r\n".encode()
    )


def test_serve_and_the_test_servers_use_the_joined_writes() -> None:
    assert UVICORN_OPTIONS["http"] is JoinedWritesProtocol


def test_an_answer_reaches_the_socket_in_one_write(server: tuple[str, list[int]]) -> None:
    base, writes = server
    answer = _exchange(base, _get("/small"))
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert answer.endswith(b"\r\n\r\nsmall answer")
    assert writes == [1]


def test_pipelined_requests_are_answered_whole_and_in_order(
    server: tuple[str, list[int]],
) -> None:
    base, _ = server
    answer = _exchange(base, _get("/small", close=False) * 3 + _get("/large"))
    assert answer.count(b"HTTP/1.1 200 OK") == 4
    assert answer.count(b"small answer") == 3
    assert answer.endswith(b"L" * (3 * HOLD_BYTES + 17))
    assert answer.index(b"small answer") < answer.index(b"LLL")


def test_a_stream_arrives_whole(server: tuple[str, list[int]]) -> None:
    base, _ = server
    answer = _exchange(base, _get("/stream"))
    body = answer.split(b"\r\n\r\n", 1)[1]
    # Chunked: take the chunk sizes out and compare the bytes.
    data, rest = b"", body
    while True:
        size_text, rest = rest.split(b"\r\n", 1)
        size = int(size_text, 16)
        if size == 0:
            break
        data, rest = data + rest[:size], rest[size + 2 :]
    assert data == b"".join(f"{i:05d}".encode() * 2000 for i in range(200))


def test_a_malformed_request_gets_its_400_before_the_connection_closes(
    server: tuple[str, list[int]],
) -> None:
    base, _ = server
    answer = _exchange(base, b"NOT HTTP AT ALL\r\n\r\n", shut=True)
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert answer.endswith(b"Invalid HTTP request received.")

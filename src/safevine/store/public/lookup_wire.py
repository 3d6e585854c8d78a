"""What a web process and its lookup process (`lookup_worker`) say to each other over a
pipe: batches of statements to run one way, their rows the other, each a frame of a
4-byte length then MessagePack. The statements are the web process's own, compiled there
(`prepared_lookup.PreparedStatement`), each sent once to a process and then named by a
number; the rows go back as the driver gave them, converted in the web process. An answer
to a statement that failed names its error's type: never its text, which may hold what
was searched for."""

import struct
from typing import Any

import msgspec

LENGTH = struct.Struct(">I")


class Ask(msgspec.Struct, array_like=True, frozen=True):
    """Run statement `statement` with `parameters`, in the driver's form."""

    id: int
    statement: int
    parameters: tuple[Any, ...]


class Batch(msgspec.Struct, array_like=True, frozen=True):
    """Lookups to run, and the statements new to the process, by number."""

    asks: list[Ask]
    statements: dict[int, str] = {}


class Answer(msgspec.Struct, array_like=True, frozen=True):
    id: int
    rows: list[tuple[Any, ...]] = []
    error: str | None = None


_encoder = msgspec.msgpack.Encoder()
batches = msgspec.msgpack.Decoder(Batch)
answers = msgspec.msgpack.Decoder(list[Answer])


def frame(message: Batch | list[Answer]) -> bytes:
    body = _encoder.encode(message)
    return LENGTH.pack(len(body)) + body


def take_frame(buffer: bytearray) -> bytes | None:
    """Take the first frame out of `buffer`; None until it is whole."""
    if len(buffer) < LENGTH.size:
        return None
    (size,) = LENGTH.unpack_from(buffer)
    if len(buffer) < LENGTH.size + size:
        return None
    taken = bytes(buffer[LENGTH.size : LENGTH.size + size])
    del buffer[: LENGTH.size + size]
    return taken

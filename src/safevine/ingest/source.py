"""Reading feed input as a stream of lines, from a file or any iterable of bytes.

Lines are decoded one at a time, so a large file uses constant memory and a line that is
not UTF-8 becomes one rejected record instead of stopping the run.
"""

import csv
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

from safevine.domain.value_ranges import FEED_LINE_BYTES, RAW_KEPT

# Shown in place of undecodable bytes; a record containing it is rejected.
UNDECODABLE = "\ufffd"
_BINARY_PROBE = 4096
# An overlong line is read through this many bytes at a time.
_PIECE = 1024 * 1024


class UnreadableSourceError(Exception):
    """The input as a whole cannot be used; nothing has been changed."""


@dataclass(frozen=True)
class CsvRow:
    line: int
    values: dict[str, str]
    # The record as received, kept with a reject so it can be fixed and sent again.
    raw: str


def file_lines(
    path: Path, progress: bool = False, max_line_bytes: int = FEED_LINE_BYTES
) -> "FeedLines":
    """Lines of a file as bytes (see FeedLines); with `progress`, a Rich progress bar on
    the terminal."""
    if not path.exists():
        raise UnreadableSourceError(f"{path}: no such file")
    if not path.is_file():
        raise UnreadableSourceError(f"{path}: not a regular file")
    try:
        handle = path.open("rb")
    except OSError as error:
        raise UnreadableSourceError(f"{path}: cannot be opened ({error.strerror})") from None
    head = handle.read(_BINARY_PROBE)
    handle.seek(0)
    if b"\x00" in head:
        handle.close()
        raise UnreadableSourceError(f"{path}: is a binary file, not UTF-8 text")
    return FeedLines(handle, max_line_bytes, path if progress else None)


@dataclass(frozen=True)
class Overlong:
    """A line too long to be read: where it was, how long, and its first bytes as text."""

    line: int
    size: int
    head: str

    @property
    def reason(self) -> str:
        return f"is {self.size:,} bytes long, more than a line may be; it was not read"


class FeedLines:
    """The lines of a feed as bytes, none longer than `limit`.

    A longer line is read through in pieces, never held whole, and passed on as a blank
    line (so every reader numbers the lines after it as before, and skips it); it is noted
    in `overlong`, and the readers turn it into a reject (`take_overlong`).
    """

    def __init__(self, handle: BinaryIO, limit: int, progress: Path | None = None) -> None:
        self._handle = handle
        self.limit = limit
        self._progress = progress
        self.overlong: list[Overlong] = []

    def take_overlong(self) -> list[Overlong]:
        """The overlong lines passed on since the last call."""
        taken, self.overlong = self.overlong, []
        return taken

    def __iter__(self) -> Iterator[bytes]:
        with self._handle:
            if self._progress is None:
                yield from self._lines(None)
                return
            columns = (
                *Progress.get_default_columns()[:1],
                BarColumn(),
                DownloadColumn(),
                TimeRemainingColumn(),
            )
            with Progress(*columns, transient=True) as bar:
                task = bar.add_task(self._progress.name, total=self._progress.stat().st_size)
                yield from self._lines(lambda size: bar.advance(task, size))

    def _lines(self, advance: Callable[[int], None] | None) -> Iterator[bytes]:
        read, limit = self._handle.readline, self.limit
        number = 0
        while line := read(limit + 1):
            number += 1
            size = len(line)
            if size > limit and not line.endswith(b"\n"):
                head = line[:RAW_KEPT]
                while line and not line.endswith(b"\n"):
                    line = read(_PIECE)
                    size += len(line)
                length = size - line.endswith(b"\n")
                self.overlong.append(
                    Overlong(number, length, head.decode("utf-8", errors="replace"))
                )
                line = b"\n"
            if advance is not None:
                advance(size)
            yield line


def text_lines(lines: Iterable[bytes]) -> Iterator[str]:
    """Decode line by line; a leading byte-order mark is dropped."""
    first = True
    for raw in lines:
        if first:
            raw = raw.removeprefix(b"\xef\xbb\xbf")
            first = False
        yield raw.decode("utf-8", errors="replace")


def csv_rows(
    lines: Iterable[bytes], required: Iterable[str], source: str
) -> tuple[list[str], Iterator[CsvRow | tuple[int, str, str]]]:
    """Check the header now, then yield rows lazily.

    Header names are case-insensitive. Raises UnreadableSourceError when the header is missing
    a required column. A row yields `(line, reason, raw)` instead when it is malformed.
    """
    recorded = RecordedLines(text_lines(lines))
    reader = csv.reader(recorded, strict=False)
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise UnreadableSourceError(f"{source}: is empty; expected a CSV header line") from None
    except csv.Error as error:
        raise UnreadableSourceError(f"{source}: header is not CSV ({error})") from None
    if not header:
        raise UnreadableSourceError(
            f"{source}: the first line is blank or longer than a line may be; "
            "expected a CSV header line"
        )
    missing = [c for c in required if c not in header]
    if missing:
        raise UnreadableSourceError(
            f"{source}: header lacks required column(s) {', '.join(missing)}; "
            f"found {', '.join(header) or 'nothing'}"
        )
    recorded.take()
    return header, _rows(reader, header, recorded)


class RecordedLines:
    """The text lines `csv` reads, with those of the record being read kept (up to
    RAW_KEPT characters), so a record `csv` refuses is rejected with its text."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = lines
        self._kept: list[str] = []
        self._size = 0

    def __iter__(self) -> "RecordedLines":
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        if self._size < RAW_KEPT:
            self._kept.append(line)
            self._size += len(line)
        return line

    def take(self) -> str:
        """The text read since the last take, without its final line break."""
        text = "".join(self._kept)[:RAW_KEPT].rstrip("\r\n")
        self._kept.clear()
        self._size = 0
        return text


def _rows(
    reader: Any, header: list[str], recorded: RecordedLines
) -> Iterator[CsvRow | tuple[int, str, str]]:
    line = reader.line_num
    while True:
        start = line + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            line = reader.line_num
            yield (start, f"is not valid CSV ({error})", recorded.take())
            continue
        recorded.take()
        line = reader.line_num
        raw = ",".join(fields)
        if not any(f.strip() for f in fields):
            continue
        if len(fields) != len(header):
            yield (start, f"has {len(fields)} fields but the header has {len(header)}", raw)
        elif any(UNDECODABLE in f for f in fields):
            yield (start, "is not valid UTF-8 text", raw)
        else:
            yield CsvRow(start, dict(zip(header, (f.strip() for f in fields), strict=True)), raw)

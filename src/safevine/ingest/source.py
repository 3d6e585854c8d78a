"""Reading feed input as a stream of lines, from a file or any iterable of bytes.

Lines are decoded one at a time, so a large file uses constant memory and a line that is
not UTF-8 becomes one rejected record instead of stopping the run.
"""

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

# Shown in place of undecodable bytes; a record containing it is rejected.
UNDECODABLE = "\ufffd"
_BINARY_PROBE = 4096


class UnreadableSourceError(Exception):
    """The input as a whole cannot be used; nothing has been changed."""


@dataclass(frozen=True)
class CsvRow:
    line: int
    values: dict[str, str]
    # The record as received, kept with a reject so it can be fixed and sent again.
    raw: str


def file_lines(path: Path, progress: bool = False) -> Iterator[bytes]:
    """Lines of a file as bytes; with `progress`, a Rich progress bar on the terminal."""
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
    return _lines_with_progress(handle, path, progress)


def _lines_with_progress(handle: BinaryIO, path: Path, progress: bool) -> Iterator[bytes]:
    with handle:
        if not progress:
            yield from handle
            return
        columns = (
            *Progress.get_default_columns()[:1],
            BarColumn(),
            DownloadColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, transient=True) as bar:
            task = bar.add_task(path.name, total=path.stat().st_size)
            for line in handle:
                bar.advance(task, len(line))
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
    reader = csv.reader(text_lines(lines), strict=False)
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise UnreadableSourceError(f"{source}: is empty; expected a CSV header line") from None
    except csv.Error as error:
        raise UnreadableSourceError(f"{source}: header is not CSV ({error})") from None
    missing = [c for c in required if c not in header]
    if missing:
        raise UnreadableSourceError(
            f"{source}: header lacks required column(s) {', '.join(missing)}; "
            f"found {', '.join(header) or 'nothing'}"
        )
    return header, _rows(reader, header)


def _rows(reader: Any, header: list[str]) -> Iterator[CsvRow | tuple[int, str, str]]:
    line = reader.line_num
    while True:
        start = line + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            line = reader.line_num
            yield (start, f"is not valid CSV ({error})", "")
            continue
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

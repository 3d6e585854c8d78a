"""One parsed feed record: its line, what it was, and either a value or why it was refused."""

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from dataclasses import field as default
from typing import Any, Generic, TypeVar

from safevine.domain.constructed import by_constructor
from safevine.domain.errors import FieldError
from safevine.domain.event_content import EventContent
from safevine.failures import describe
from safevine.ingest.source import CsvRow, FeedLines

log = logging.getLogger("safevine.ingest")

T = TypeVar("T")
U = TypeVar("U")


@dataclass(frozen=True)
class Parsed(Generic[T]):
    line: int
    raw: str
    value: T | None = None
    # The field at fault and the reason, when `value` is None.
    field: str = ""
    reason: str = ""
    # The record as a mapping, for salvaging a protection from a rejected record.
    record: Mapping[str, Any] = default(default_factory=dict)
    # An event's content hash and stored details, worked out where it was parsed (in the
    # parsing child on SQLite) rather than by the writer; None: the writer works them out.
    content: EventContent | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        return by_constructor(self)


def refused(parsed: "Parsed[T]", error: BaseException) -> "Parsed[T]":
    """`parsed` as a reject, for a record whose values failed to be stored (the error's
    type only: its text can quote the record). A reject refused in its turn (its salvaged
    protection could not be stored either) keeps its field and reason but no longer the
    record, so nothing more is salvaged from it."""
    if parsed.value is None:
        return Parsed(parsed.line, parsed.raw, field=parsed.field, reason=parsed.reason)
    cause = getattr(error, "orig", None) or error
    reason = (
        f"could not be stored ({type(cause).__name__}); the rest of the batch was applied: "
        "correct this record and send it again"
    )
    return Parsed(parsed.line, parsed.raw, field="record", reason=reason, record=parsed.record)


def with_overlong(items: Iterator[U], lines: Iterable[bytes]) -> Iterator["U | Parsed[Any]"]:
    """`items` (parsed records, or records still to be parsed), with a reject for each line
    too long to be read that `lines` (when it is a FeedLines) passed over, placed before the
    record read after it."""
    if not isinstance(lines, FeedLines):
        yield from items
        return
    for item in items:
        if lines.overlong:
            yield from _overlong(lines)
        yield item
    yield from _overlong(lines)


def _overlong(lines: FeedLines) -> Iterator["Parsed[Any]"]:
    for found in lines.take_overlong():
        yield Parsed(found.line, found.head, field="line", reason=found.reason)


def _same(value: Any) -> Any:
    return value


def parse_csv_rows(
    rows: Iterator[CsvRow | tuple[int, str, str]],
    convert: Callable[[Mapping[str, Any]], T],
    *,
    shape: Callable[[dict[str, str]], Mapping[str, Any]] = _same,
    column_of: Callable[[str], str] = _same,
) -> Iterator[Parsed[T]]:
    """Convert each CSV row (see `parse_csv_row`)."""
    for row in rows:
        yield parse_csv_row(row, convert, shape=shape, column_of=column_of)


def parse_csv_row(
    row: CsvRow | tuple[int, str, str],
    convert: Callable[[Mapping[str, Any]], T],
    *,
    shape: Callable[[dict[str, str]], Mapping[str, Any]] = _same,
    column_of: Callable[[str], str] = _same,
    keep: Callable[[Mapping[str, Any]], Mapping[str, Any]] = _same,
    content: Callable[[T], EventContent | None] | None = None,
) -> Parsed[T]:
    """Convert one CSV row; `shape` reshapes it first, `column_of` names fields in errors,
    `keep` is what the Parsed keeps of the record, `content` its value's `content`."""
    if not isinstance(row, CsvRow):
        line, reason, raw = row
        return Parsed(line, raw, field="line", reason=reason)
    record = shape(row.values)
    kept = keep(record)
    try:
        value = convert(record)
    except FieldError as error:
        return Parsed(
            row.line, row.raw, field=column_of(error.field), reason=error.reason, record=kept
        )
    except Exception as error:
        return unreadable(row.line, row.raw, error, kept)
    return Parsed(
        row.line, row.raw, value, record=kept, content=content(value) if content else None
    )


def unreadable(line: int, raw: str, error: Exception, record: Mapping[str, Any]) -> "Parsed[Any]":
    """A reject for a record whose conversion failed other than by a FieldError (a check
    this code lacks): the record alone fails, named by its type, and the batch goes on.
    Logged by type and place (never the message, which can quote the record) so the gap
    can be found and closed."""
    log.warning("feed record could not be read", extra=describe(error))
    reason = f"could not be read ({type(error).__name__}); correct this record and send it again"
    return Parsed(line, raw, field="record", reason=reason, record=record)

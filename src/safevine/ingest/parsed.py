"""One parsed feed record: its line, what it was, and either a value or why it was refused."""

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from dataclasses import field as default
from typing import Any, Generic, TypeVar

from safevine.domain.errors import FieldError
from safevine.ingest.source import CsvRow

T = TypeVar("T")


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


def _same(value: Any) -> Any:
    return value


def parse_csv_rows(
    rows: Iterator[CsvRow | tuple[int, str, str]],
    convert: Callable[[Mapping[str, Any]], T],
    *,
    shape: Callable[[dict[str, str]], Mapping[str, Any]] = _same,
    column_of: Callable[[str], str] = _same,
) -> Iterator[Parsed[T]]:
    """Convert each CSV row; `shape` reshapes it first, `column_of` names fields in errors."""
    for row in rows:
        if not isinstance(row, CsvRow):
            line, reason, raw = row
            yield Parsed(line, raw, field="line", reason=reason)
            continue
        record = shape(row.values)
        try:
            yield Parsed(row.line, row.raw, convert(record), record=record)
        except FieldError as error:
            yield Parsed(
                row.line, row.raw, field=column_of(error.field), reason=error.reason, record=record
            )

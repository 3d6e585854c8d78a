"""The value ranges of `domain.value_ranges` as FastAPI and pydantic types, so an API model
or path parameter out of range is a 422 naming its field, never a database error."""

from typing import Annotated

from fastapi import Path, Query
from pydantic import AfterValidator, Field

from safevine.domain.errors import FieldError
from safevine.domain.value_ranges import (
    CODE_LENGTH,
    MAX_ID,
    NAME_LENGTH,
    REASON_LENGTH,
    check_free_text,
    check_text,
)


def _clean(value: str) -> str:
    try:
        return check_text(value, "value", len(value))
    except FieldError as error:
        raise ValueError(error.reason) from None


def _clean_free(value: str) -> str:
    try:
        return check_free_text(value, "value", len(value))
    except FieldError as error:
        raise ValueError(error.reason) from None


# A row id in a path: BIGINT, so at most 2**63 - 1 (a larger one would overflow the driver).
RowId = Annotated[int, Path(ge=1, le=MAX_ID)]
# A short name (a token's, a staff member's): one line, no control characters.
ShortName = Annotated[str, Field(min_length=1, max_length=NAME_LENGTH), AfterValidator(_clean)]
ShortNameInPath = Annotated[str, Path(min_length=1, max_length=NAME_LENGTH), AfterValidator(_clean)]
# A reason or note typed by staff: line breaks allowed, no other control characters.
Reason = Annotated[str, Field(min_length=1, max_length=REASON_LENGTH), AfterValidator(_clean_free)]
# Identifiers given in a query (A-numbers travel in bodies, never here).
FacilityCode = Annotated[
    Annotated[str, Field(max_length=CODE_LENGTH), AfterValidator(_clean)] | None,
    Query(max_length=CODE_LENGTH),
]
FacilityCodes = Annotated[
    list[Annotated[str, Field(max_length=CODE_LENGTH), AfterValidator(_clean)]] | None,
    Query(max_length=10_000),
]

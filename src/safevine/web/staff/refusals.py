"""How the staff API answers an action's error: by its kind, in this one place."""

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from safevine.domain.errors import (
    ConflictError,
    FieldError,
    InvalidError,
    NotAllowedError,
    NotFoundError,
    RefusedError,
)

# The first kind an error is an instance of decides (an error may be two kinds: a clear
# confirmed by its asker is a protection conflict and, first, not allowed).
STATUSES: tuple[tuple[type[Exception], int], ...] = (
    (NotAllowedError, 403),
    (NotFoundError, 404),
    (ConflictError, 409),
    (InvalidError, 422),
    (FieldError, 422),
)


def status_of(error: Exception) -> int:
    for kind, status in STATUSES:
        if isinstance(error, kind):
            return status
    raise TypeError(f"no status for {type(error).__name__}")


async def _answer(request: Request, error: Exception) -> Response:
    message = f"{error.field} {error.reason}" if isinstance(error, FieldError) else str(error)
    return JSONResponse({"error": message}, status_code=status_of(error))


def answer_refusals(app: FastAPI) -> None:
    app.add_exception_handler(RefusedError, _answer)
    app.add_exception_handler(FieldError, _answer)

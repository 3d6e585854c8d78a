"""The screening queue for staff with the `protect` scope: who waits, and screening one
person or many with one reason (each audited)."""

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from safevine.actions import screening
from safevine.actions.actor import Actor
from safevine.domain.a_number import format_a_number
from safevine.domain.value_ranges import MAX_ID
from safevine.store.records import screening_queue
from safevine.store.records.staff_tokens import StaffToken
from safevine.web.staff.auth import require
from safevine.web.staff.state import StaffState
from safevine.web.value_types import FacilityCode, Reason

router = APIRouter(prefix="/api/v1/staff/screening", tags=["staff: screening"])
Screener = Annotated[StaffToken, Depends(require("protect"))]


def _json(waiting: screening_queue.Waiting, now: datetime) -> dict[str, Any]:
    values = asdict(waiting)
    values["a_number"] = format_a_number(waiting.a_number)
    values["date_of_birth"] = waiting.date_of_birth.isoformat() if waiting.date_of_birth else None
    values["waiting_since"] = waiting.waiting_since.isoformat()
    values["waiting_seconds"] = round((now - waiting.waiting_since).total_seconds())
    return values


@router.get("", summary="People waiting to be screened, longest waiting first")
def queue(
    request: Request,
    token: Screener,
    facility: FacilityCode = None,
) -> JSONResponse:
    now = datetime.now(UTC)
    with StaffState.of(request).records_engine.connect() as connection:
        summary = screening_queue.summary(connection)
        people = screening_queue.waiting(connection, facility)
    return JSONResponse(
        {
            "size": summary.size,
            "oldest_since": summary.oldest.isoformat() if summary.oldest else None,
            "people": [_json(p, now) for p in people],
        }
    )


class Screening(BaseModel):
    people: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(min_length=1, max_length=1000)
    decision: Literal["cleared", "protected"]
    reason: Reason


@router.post("", summary="Screen people as cleared or protected, with one reason")
def screen(body: Screening, request: Request, token: Screener) -> JSONResponse:
    with StaffState.of(request).records_engine.begin() as connection:
        outcome = screening.screen_many(
            connection,
            Actor(token.actor),
            body.people,
            screening.Decision(body.decision),
            body.reason,
            datetime.now(UTC),
        )
    return JSONResponse(
        {
            "screened": outcome.done,
            "refused": [{"person": p, "reason": why} for p, why in outcome.refused],
        },
        status_code=200 if outcome.done or not outcome.refused else 409,
    )

"""Custody events for staff with the `correct` scope (supervisors and admins): retract
one recorded in error, with a reason (audited)."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from safevine.actions import events
from safevine.actions.actor import Actor
from safevine.domain.value_ranges import IDENTIFIER_LENGTH
from safevine.store.records.staff_tokens import StaffToken
from safevine.web.staff.auth import require
from safevine.web.staff.state import StaffState
from safevine.web.value_types import Reason

router = APIRouter(prefix="/api/v1/staff/events", tags=["staff: events"])
Corrector = Annotated[StaffToken, Depends(require("correct"))]


# The event id travels in the body, never in the URL: a feed's ids may carry an A-number,
# which no proxy or access log may keep.
class Retract(BaseModel):
    event_id: str = Field(min_length=1, max_length=IDENTIFIER_LENGTH)
    reason: Reason


@router.post("/retract", summary="Retract a custody event recorded in error (audited)")
def retract(body: Retract, request: Request, token: Corrector) -> JSONResponse:
    with StaffState.of(request).records_engine.begin() as connection:
        done = events.retract(
            connection, Actor(token.actor), body.event_id, body.reason, datetime.now(UTC)
        )
    return JSONResponse(done.as_json())

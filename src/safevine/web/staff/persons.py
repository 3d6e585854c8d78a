"""Staff view of a person, protect, and clear (one person asks, a second confirms)."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from safevine.actions import persons
from safevine.actions.actor import Actor
from safevine.store.records.person_view import view_json
from safevine.store.records.staff_tokens import StaffToken
from safevine.web.staff.auth import require
from safevine.web.staff.state import StaffState
from safevine.web.value_types import Reason, RowId

router = APIRouter(prefix="/api/v1/staff", tags=["staff: persons"])
Reader = Annotated[StaffToken, Depends(require("read"))]
Protector = Annotated[StaffToken, Depends(require("protect"))]


# A-numbers travel in request bodies, never in URLs, so no proxy or access log keeps them.
class Person(BaseModel):
    a_number: str = Field(min_length=1, max_length=40)


class PersonReason(Person):
    reason: Reason


@router.post("/persons/lookup", summary="Everything about a person (audited)")
def show(body: Person, request: Request, token: Reader) -> JSONResponse:
    with StaffState.of(request).records_engine.begin() as connection:
        view = persons.view(connection, Actor(token.actor), body.a_number, datetime.now(UTC))
    return JSONResponse(view_json(view))


@router.post("/persons/protect", summary="Protect a person at once")
def protect_person(body: PersonReason, request: Request, token: Protector) -> JSONResponse:
    with StaffState.of(request).records_engine.begin() as connection:
        person, changed = persons.protect(
            connection, Actor(token.actor), body.a_number, body.reason, datetime.now(UTC)
        )
    return JSONResponse({"person": person.id, "protection": "protected", "changed": changed})


@router.post(
    "/persons/clear",
    summary="Clear a protection (with two-person clear, this only asks)",
)
def clear_person(body: PersonReason, request: Request, token: Protector) -> JSONResponse:
    state = StaffState.of(request)
    with state.records_engine.begin() as connection:
        outcome = persons.clear(
            connection,
            Actor(token.actor),
            body.a_number,
            body.reason,
            datetime.now(UTC),
            two_person=state.settings.two_person_clear,
        )
    if outcome.request is not None:
        return JSONResponse(
            {
                "person": outcome.person.id,
                "request": outcome.request.id,
                "state": "pending",
                "expires_at": outcome.request.expires_at.isoformat(),
            },
            status_code=202,
        )
    return JSONResponse(
        {"person": outcome.person.id, "protection": "cleared", "changed": outcome.changed}
    )


@router.post(
    "/clear-requests/{request_id}/confirm", summary="Confirm another staff member's clear request"
)
def confirm(request_id: RowId, request: Request, token: Protector) -> JSONResponse:
    with StaffState.of(request).records_engine.begin() as connection:
        person_id = persons.confirm_clear(
            connection, Actor(token.actor), request_id, datetime.now(UTC)
        )
    return JSONResponse({"person": person_id, "protection": "cleared"})

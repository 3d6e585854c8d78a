"""Staff view of a person, protect, and clear (one person asks, a second confirms)."""

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from safevine.domain.a_number import normalise_a_number
from safevine.domain.errors import FieldError
from safevine.store.records.audit import append
from safevine.store.records.person_view import staff_view, view_json
from safevine.store.records.persons import person_ids_by_a_number
from safevine.store.records.protection import (
    ProtectionError,
    clear,
    confirm_clear,
    protect,
    request_clear,
)
from safevine.store.records.staff_tokens import StaffToken
from safevine.web.staff.auth import require
from safevine.web.state import AppState
from safevine.web.value_types import Reason, RowId

router = APIRouter(prefix="/api/v1/staff", tags=["staff: persons"])
Reader = Annotated[StaffToken, Depends(require("read"))]
Protector = Annotated[StaffToken, Depends(require("protect"))]


# A-numbers travel in request bodies, never in URLs, so no proxy or access log keeps them.
class Person(BaseModel):
    a_number: str = Field(min_length=1, max_length=40)


class PersonReason(Person):
    reason: Reason


def _canonical(a_number: str) -> str:
    try:
        return normalise_a_number(a_number, "a_number")
    except FieldError as error:
        raise HTTPException(422, f"{error.field} {error.reason}") from None


def _person_id(connection: Any, a_number: str) -> int:
    found = person_ids_by_a_number(connection, [a_number])
    if a_number not in found:
        raise HTTPException(404, "no person with this A-number")
    return found[a_number]


@router.post("/persons/lookup", summary="Everything about a person (audited)")
def show(body: Person, request: Request, token: Reader) -> JSONResponse:
    canonical = _canonical(body.a_number)
    with AppState.of(request).records_engine.begin() as connection:
        view = staff_view(connection, canonical)
        if view is None:
            raise HTTPException(404, "no person with this A-number")
        append(
            connection,
            actor=token.name,
            action="view_person",
            target=f"person:{view.id}",
            reason=None,
            at=datetime.now(UTC),
        )
    return JSONResponse(view_json(view))


@router.post("/persons/protect", summary="Protect a person at once")
def protect_person(body: PersonReason, request: Request, token: Protector) -> JSONResponse:
    canonical = _canonical(body.a_number)
    with AppState.of(request).records_engine.begin() as connection:
        person_id = _person_id(connection, canonical)
        changed = protect(
            connection,
            person_id,
            actor=token.name,
            source="staff",
            reason=body.reason,
            now=datetime.now(UTC),
        )
    return JSONResponse({"person": person_id, "protection": "protected", "changed": changed})


@router.post(
    "/persons/clear",
    summary="Clear a protection (with two-person clear, this only asks)",
)
def clear_person(body: PersonReason, request: Request, token: Protector) -> JSONResponse:
    canonical = _canonical(body.a_number)
    state = AppState.of(request)
    now = datetime.now(UTC)
    try:
        with state.records_engine.begin() as connection:
            person_id = _person_id(connection, canonical)
            if state.settings.two_person_clear:
                asked = request_clear(
                    connection, person_id, actor=token.name, reason=body.reason, now=now
                )
                return JSONResponse(
                    {
                        "person": person_id,
                        "request": asked.id,
                        "state": "pending",
                        "expires_at": asked.expires_at.isoformat(),
                    },
                    status_code=202,
                )
            changed = clear(connection, person_id, actor=token.name, reason=body.reason, now=now)
    except ProtectionError as error:
        raise HTTPException(409, str(error)) from None
    return JSONResponse({"person": person_id, "protection": "cleared", "changed": changed})


@router.post(
    "/clear-requests/{request_id}/confirm", summary="Confirm another staff member's clear request"
)
def confirm(request_id: RowId, request: Request, token: Protector) -> JSONResponse:
    try:
        with AppState.of(request).records_engine.begin() as connection:
            person_id = confirm_clear(
                connection, request_id, actor=token.name, now=datetime.now(UTC)
            )
    except ProtectionError as error:
        status = 403 if "different person" in str(error) else 409
        raise HTTPException(status, str(error)) from None
    return JSONResponse({"person": person_id, "protection": "cleared"})

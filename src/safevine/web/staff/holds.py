"""Held batches for staff with the `ingest` scope: look, release or discard (audited)."""

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse

from safevine.actions import holds as hold_actions
from safevine.actions.actor import Actor
from safevine.store.records import holds
from safevine.store.records.holds import Hold
from safevine.store.records.staff_tokens import StaffToken
from safevine.web.staff.auth import require
from safevine.web.staff.state import StaffState
from safevine.web.value_types import RowId

router = APIRouter(prefix="/api/v1/staff/holds", tags=["staff: holds"])
Ingester = Annotated[StaffToken, Depends(require("ingest"))]


def _json(hold: Hold) -> dict[str, Any]:
    values = asdict(hold)
    for key in ("created_at", "decided_at"):
        values[key] = values[key].isoformat() if values[key] else None
    values["age_seconds"] = round((datetime.now(UTC) - hold.created_at).total_seconds())
    return values


@router.get("", summary="Held batches (add ?all=true for decided ones)")
def listing(request: Request, token: Ingester, all: bool = False) -> JSONResponse:
    with StaffState.of(request).records_engine.connect() as connection:
        return JSONResponse([_json(h) for h in holds.listing(connection, only_open=not all)])


@router.get("/{hold_id}", summary="One hold: counts by kind and facility, a sample")
def show(hold_id: RowId, request: Request, token: Ingester) -> JSONResponse:
    with StaffState.of(request).records_engine.connect() as connection:
        hold = holds.get(connection, hold_id)
        if hold is None:
            raise HTTPException(404, f"no hold {hold_id}")
        answer = _json(hold)
        if hold.state == "held":
            answer["detail"] = holds.batch_detail(connection, hold.batch_id)
    return JSONResponse(answer)


@router.post("/{hold_id}/release", summary="Release: the notifications go out, each once")
def release(hold_id: RowId, request: Request, token: Ingester) -> JSONResponse:
    with StaffState.of(request).records_engine.begin() as connection:
        queued = hold_actions.release(connection, Actor(token.actor), hold_id, datetime.now(UTC))
    return JSONResponse({"hold": hold_id, "state": "released", "queued": queued})


@router.post("/{hold_id}/discard", summary="Discard: revert the changes, alert nobody")
def discard(hold_id: RowId, request: Request, token: Ingester) -> JSONResponse:
    with StaffState.of(request).records_engine.begin() as connection:
        restored = hold_actions.discard(connection, Actor(token.actor), hold_id, datetime.now(UTC))
    return JSONResponse({"hold": hold_id, "state": "discarded", "restored": restored})

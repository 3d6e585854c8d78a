"""Token administration (admin scope). A new token is shown once; only its hash is kept."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from safevine.actions import tokens
from safevine.actions.actor import Actor
from safevine.store.records import staff_tokens
from safevine.store.records.staff_tokens import StaffToken
from safevine.web.staff.auth import require
from safevine.web.staff.state import StaffState
from safevine.web.value_types import ShortName, ShortNameInPath

router = APIRouter(prefix="/api/v1/staff/tokens", tags=["staff: tokens"])
Admin = Annotated[StaffToken, Depends(require("admin"))]


class NewToken(BaseModel):
    name: ShortName
    scopes: list[str] = Field(min_length=1, max_length=5)


@router.post("", status_code=201, summary="Make a token (shown once)")
def create(body: NewToken, request: Request, token: Admin) -> JSONResponse:
    now = datetime.now(UTC)
    with StaffState.of(request).records_engine.begin() as connection:
        secret = tokens.create(connection, Actor(token.actor), body.name, body.scopes, now)
    return JSONResponse({"name": body.name, "token": secret}, status_code=201)


@router.get("", summary="List tokens (never the secrets)")
def listing(request: Request, token: Admin) -> JSONResponse:
    with StaffState.of(request).records_engine.connect() as connection:
        rows = staff_tokens.listing(connection)
    return JSONResponse(
        [
            {
                "name": t.name,
                "scopes": list(t.scopes),
                "created_at": t.created_at.isoformat(),
                "revoked": t.revoked_at is not None,
            }
            for t in rows
        ]
    )


@router.delete("/{name}", status_code=204, summary="Revoke a token")
def revoke(name: ShortNameInPath, request: Request, token: Admin) -> Response:
    now = datetime.now(UTC)
    with StaffState.of(request).records_engine.begin() as connection:
        tokens.revoke(connection, Actor(token.actor), name, now)
    return Response(status_code=204)

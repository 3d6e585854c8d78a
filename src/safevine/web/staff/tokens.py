"""Token administration (admin scope). A new token is shown once; only its hash is kept."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from safevine.store.records import staff_tokens
from safevine.store.records.audit import append
from safevine.store.records.staff_tokens import StaffToken, TokenError
from safevine.web.staff.auth import require
from safevine.web.state import AppState
from safevine.web.value_types import ShortName, ShortNameInPath

router = APIRouter(prefix="/api/v1/staff/tokens", tags=["staff: tokens"])
Admin = Annotated[StaffToken, Depends(require("admin"))]


class NewToken(BaseModel):
    name: ShortName
    scopes: list[str] = Field(min_length=1, max_length=5)


@router.post("", status_code=201, summary="Make a token (shown once)")
def create(body: NewToken, request: Request, token: Admin) -> JSONResponse:
    now = datetime.now(UTC)
    try:
        with AppState.of(request).records_engine.begin() as connection:
            secret = staff_tokens.create(connection, body.name, body.scopes, now)
            append(
                connection,
                actor=token.name,
                action="token_create",
                target=f"token:{body.name}",
                reason=",".join(sorted(body.scopes)),
                at=now,
            )
    except TokenError as error:
        raise HTTPException(422, str(error)) from None
    return JSONResponse({"name": body.name, "token": secret}, status_code=201)


@router.get("", summary="List tokens (never the secrets)")
def listing(request: Request, token: Admin) -> JSONResponse:
    with AppState.of(request).records_engine.connect() as connection:
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
    try:
        with AppState.of(request).records_engine.begin() as connection:
            staff_tokens.revoke(connection, name, now)
            append(
                connection,
                actor=token.name,
                action="token_revoke",
                target=f"token:{name}",
                reason=None,
                at=now,
            )
    except TokenError as error:
        raise HTTPException(404, str(error)) from None
    return Response(status_code=204)

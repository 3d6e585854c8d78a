"""Bearer tokens with scopes. A missing, wrong or revoked token gets 401, a token without
the scope 403, and in both cases nothing happens."""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from safevine.store.records import staff_tokens
from safevine.store.records.staff_tokens import StaffToken
from safevine.web.staff.state import StaffState

bearer = HTTPBearer(auto_error=False, description="A staff token from `safevine token create`.")


def require(scope: str) -> Callable[..., StaffToken]:
    def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> StaffToken:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise HTTPException(
                401, "a staff bearer token is required", headers={"WWW-Authenticate": "Bearer"}
            )
        state = StaffState.of(request)
        with state.records_engine.begin() as connection:
            token = staff_tokens.authenticate(
                connection, credentials.credentials, datetime.now(UTC)
            )
        if token is None:
            raise HTTPException(
                401,
                "this token is not valid or was revoked",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if scope not in token.scopes:
            raise HTTPException(403, f"this token lacks the {scope!r} scope")
        return token

    return dependency

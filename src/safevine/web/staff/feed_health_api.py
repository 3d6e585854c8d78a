"""Feed health for the agency's systems: every facility's state as JSON (report scope)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from safevine.store.records import feed_health
from safevine.store.records.staff_tokens import StaffToken
from safevine.web.staff.auth import require
from safevine.web.staff.state import StaffState

router = APIRouter(tags=["staff: reports"])
Reporter = Annotated[StaffToken, Depends(require("report"))]


@router.get("/api/v1/staff/feed-health", summary="Every facility's feed health, worst first")
def feed_health_json(request: Request, token: Reporter) -> JSONResponse:
    with StaffState.of(request).records_engine.connect() as connection:
        rows = feed_health.listing(connection)
    return JSONResponse({"facilities": [f.as_json() for f in rows]})

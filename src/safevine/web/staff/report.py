"""The delivery report (JSON and a server-rendered page), the audit export, and /metrics."""

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import Connection

from safevine.domain import value_ranges
from safevine.domain.errors import FieldError
from safevine.store.records import audit, delivery_report
from safevine.store.records.staff_accounts import Session
from safevine.store.records.staff_tokens import StaffToken
from safevine.web.rendering import render
from safevine.web.staff.auth import require
from safevine.web.staff.charts import bars
from safevine.web.staff.state import StaffState

router = APIRouter(tags=["staff: reports"])
Reporter = Annotated[StaffToken, Depends(require("report"))]


@router.get("/api/v1/staff/report", summary="Delivery report")
def report_json(request: Request, token: Reporter) -> JSONResponse:
    with StaffState.of(request).records_engine.connect() as connection:
        return JSONResponse(_build(request, connection).as_json())


@router.get("/staff/report", response_class=HTMLResponse, summary="Delivery report page")
def report_page(request: Request, token: Reporter) -> HTMLResponse:
    return delivery_page(request, None)


def delivery_page(request: Request, session: Session | None) -> HTMLResponse:
    """The delivery report with its charts: for a token holder, or in the console."""
    with StaffState.of(request).records_engine.connect() as connection:
        report = _build(request, connection)
    channel_rows = [
        (f"{row['channel']} {row['state']}", row["count"]) for row in report.by_channel_state
    ]
    day_totals: dict[str, int] = {}
    for row in report.by_day:
        day_totals[row["day"]] = day_totals.get(row["day"], 0) + row["count"]
    charts = {
        "state": bars("Notifications by state", sorted(report.by_state.items())),
        "channel": bars("Notifications by channel and state", channel_rows),
        "day": bars("Notifications created per day", sorted(day_totals.items())),
        "failures": bars(
            "Failures by reason",
            [((f["reason"] or "no reason recorded")[:40], f["count"]) for f in report.failures],
        ),
        "cancellations": bars(
            "Cancellations by cause",
            sorted((k or "unknown", v) for k, v in report.cancellations.items()),
        ),
        "registrations": bars("Registrations by state", sorted(report.registrations.items())),
    }
    html = render(
        "staff_report.html",
        "en",
        report=report,
        charts=charts,
        receipt_wait=StaffState.of(request).settings.receipt_wait_minutes,
        path=request.url.path,
        session=session,
        rights={r.value for r in session.account.rights} if session else set(),
        notice=None,
        problem=None,
    )
    return HTMLResponse(html)


def _build(request: Request, connection: Connection) -> delivery_report.DeliveryReport:
    wait = timedelta(minutes=StaffState.of(request).settings.receipt_wait_minutes)
    return delivery_report.build(connection, receipt_wait=wait)


@router.get("/api/v1/staff/audit", summary="The audit log, with its chain head")
def audit_export(
    request: Request,
    token: Reporter,
    since: Annotated[str | None, Query(description="ISO date or date and time")] = None,
) -> JSONResponse:
    try:
        start = value_ranges.since(since, "since", datetime.now(UTC)) if since else None
    except FieldError as error:
        raise HTTPException(422, f"{error.field} {error.reason}") from None
    with StaffState.of(request).records_engine.connect() as connection:
        entries = [e.as_json() for e in audit.entries(connection, start)]
        head = audit.verify(connection).head
    return JSONResponse({"entries": entries, "head": head})


@router.get("/metrics", summary="Prometheus metrics")
def metrics(request: Request, token: Reporter) -> Response:
    return Response(
        generate_latest(StaffState.of(request).metrics.registry), media_type=CONTENT_TYPE_LATEST
    )

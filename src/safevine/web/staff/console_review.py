"""The staff console's review pages: held batches (released or discarded by a supervisor),
feed batches with their rejects, and the audit log with its chain's verification,
filtered and exported as JSON Lines."""

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from sqlalchemy import Select, select

from safevine.actions import holds as hold_actions
from safevine.actions.actor import Actor
from safevine.domain.errors import RefusedError
from safevine.domain.staff_roles import Right
from safevine.store.records import audit, holds
from safevine.store.schema import audit_log, ingest_batches, ingest_rejects
from safevine.web.staff.console_pages import page
from safevine.web.staff.console_session import Staffer, checked_form, needs
from safevine.web.staff.refusals import status_of
from safevine.web.staff.state import StaffState

router = APIRouter(include_in_schema=False)
SHOWN = 500


# Held batches -----------------------------------------------------------------------------


@router.get("/holds")
def hold_list(request: Request, session: Staffer) -> Response:
    needs(session, Right.VIEW_HOLDS)
    with StaffState.of(request).records_engine.connect() as connection:
        rows = holds.listing(connection, only_open=False)
    rows.sort(key=lambda h: (h.state != "held", -h.id))
    return page(request, "staff/holds.html", session, holds=rows)


@router.get("/holds/{hold_id}")
def hold_page(request: Request, hold_id: int, session: Staffer) -> Response:
    needs(session, Right.VIEW_HOLDS)
    notice = {
        "released": "Released: the notifications are on their way.",
        "discarded": "Discarded: the changes were reverted; nobody was alerted.",
    }.get(request.query_params.get("done", ""))
    return _hold(request, session, hold_id, notice=notice)


def _hold(
    request: Request, session: Staffer, hold_id: int, status: int = 200, **context: object
) -> Response:
    with StaffState.of(request).records_engine.connect() as connection:
        hold = holds.get(connection, hold_id) if 0 < hold_id < 2**63 else None
        detail = holds.batch_detail(connection, hold.batch_id) if hold else None
    if hold is None:
        return page(
            request,
            "staff/message.html",
            session,
            404,
            heading="No such hold",
            message=f"There is no hold {hold_id}.",
        )
    return page(request, "staff/hold.html", session, status, hold=hold, detail=detail, **context)


async def _decide(request: Request, session: Staffer, hold_id: int, release: bool) -> Response:
    needs(session, Right.DECIDE_HOLDS)
    await checked_form(request, session)
    decide = hold_actions.release if release else hold_actions.discard
    try:
        with StaffState.of(request).records_engine.begin() as connection:
            decide(connection, Actor(session.account.name), hold_id, datetime.now(UTC))
    except RefusedError as error:
        return _hold(request, session, hold_id, status_of(error), problem=f"{error}.")
    done = "released" if release else "discarded"
    return RedirectResponse(f"/holds/{hold_id}?done={done}", status_code=303)


@router.post("/holds/{hold_id}/release")
async def release(request: Request, hold_id: int, session: Staffer) -> Response:
    return await _decide(request, session, hold_id, release=True)


@router.post("/holds/{hold_id}/discard")
async def discard(request: Request, hold_id: int, session: Staffer) -> Response:
    return await _decide(request, session, hold_id, release=False)


# Batches ----------------------------------------------------------------------------------


@router.get("/batches")
def batch_list(request: Request, session: Staffer) -> Response:
    needs(session, Right.READ_REPORTS)
    with StaffState.of(request).records_engine.connect() as connection:
        rows = connection.execute(
            select(ingest_batches).order_by(ingest_batches.c.id.desc()).limit(200)
        ).all()
    return page(request, "staff/batches.html", session, batches=rows)


@router.get("/batches/{batch_id}")
def batch_page(request: Request, batch_id: int, session: Staffer) -> Response:
    needs(session, Right.READ_REPORTS)
    with StaffState.of(request).records_engine.connect() as connection:
        batch = (
            connection.execute(
                select(ingest_batches).where(ingest_batches.c.id == batch_id)
            ).first()
            if 0 < batch_id < 2**63
            else None
        )
        rejects = connection.execute(
            select(ingest_rejects.c.line, ingest_rejects.c.field, ingest_rejects.c.reason)
            .where(ingest_rejects.c.batch_id == batch_id)
            .order_by(ingest_rejects.c.line)
            .limit(SHOWN)
        ).all()
    if batch is None:
        return page(
            request,
            "staff/message.html",
            session,
            404,
            heading="No such batch",
            message=f"There is no batch {batch_id}.",
        )
    return page(request, "staff/batch.html", session, batch=batch, rejects=rejects)


# The audit log ----------------------------------------------------------------------------


def _day(raw: str | None) -> date | None:
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


def _filtered(request: Request) -> tuple[Select[tuple[object, ...]], dict[str, str]]:
    params = request.query_params
    filters = {key: (params.get(key) or "")[:100] for key in ("actor", "action", "since", "until")}
    query = select(audit_log)
    if filters["actor"]:
        query = query.where(audit_log.c.actor == filters["actor"])
    if filters["action"]:
        query = query.where(audit_log.c.action == filters["action"])
    if since := _day(filters["since"]):
        query = query.where(audit_log.c.at >= datetime.combine(since, time(), UTC))
    if until := _day(filters["until"]):
        query = query.where(
            audit_log.c.at < datetime.combine(until, time(), UTC) + timedelta(days=1)
        )
    return query, filters


@router.get("/audit")
def audit_page(request: Request, session: Staffer) -> Response:
    needs(session, Right.READ_AUDIT)
    query, filters = _filtered(request)
    with StaffState.of(request).records_engine.connect() as connection:
        verification = audit.verify(connection)
        rows = connection.execute(query.order_by(audit_log.c.seq.desc()).limit(SHOWN + 1)).all()
    shown = {k: v for k, v in filters.items() if v}
    return page(
        request,
        "staff/audit.html",
        session,
        verification=verification,
        entries=rows[:SHOWN],
        more=len(rows) > SHOWN,
        filters=filters,
        query=f"?{urlencode(shown)}" if shown else "",
    )


@router.get("/audit/export")
def audit_export(request: Request, session: Staffer) -> Response:
    needs(session, Right.READ_AUDIT)
    query, _ = _filtered(request)
    engine = StaffState.of(request).records_engine

    def lines() -> Iterator[bytes]:
        with engine.connect() as connection:
            for r in connection.execute(query.order_by(audit_log.c.seq)):
                entry = audit.AuditEntry(
                    r.seq, r.at, r.actor, r.action, r.target, r.reason, r.prev_hash, r.hash
                )
                yield json.dumps(entry.as_json(), ensure_ascii=False).encode() + b"\n"
            head = audit.verify(connection).head
            yield json.dumps({"head": head}).encode() + b"\n"

    return StreamingResponse(
        lines(),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": 'attachment; filename="safevine-audit.jsonl"'},
    )

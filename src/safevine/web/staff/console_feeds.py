"""The staff console's feed health pages: every facility's state (sortable and filterable
without JavaScript), one facility's changes and outages, and the forms that pause, close
or lift a facility and set its cadence. Changes go through `actions.feed_health`."""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import Connection
from starlette.datastructures import FormData

from safevine.actions import feed_health as feed_actions
from safevine.actions.actor import Actor
from safevine.domain.errors import FieldError, RefusedError
from safevine.domain.feed_health import Health
from safevine.domain.staff_roles import Right
from safevine.store.records import feed_health
from safevine.store.records.feed_health import WORST_FIRST, FacilityHealth
from safevine.store.records.staff_accounts import Session
from safevine.web.staff.console_pages import page, problem_text
from safevine.web.staff.console_session import ForbiddenError, Staffer, checked_form, needs
from safevine.web.staff.refusals import status_of
from safevine.web.staff.state import StaffState

router = APIRouter(include_in_schema=False)

SORTS = {
    "state": "worst first",
    "facility": "facility",
    "silence": "longest silent",
    "since": "longest in its state",
}
DONE = {
    "paused": "Paused: no alert or notice while the hold lasts.",
    "closed": "Closed: no alert or notice while the hold lasts.",
    "lifted": "Hold lifted: the next evaluation judges the facility again.",
    "cadence": "Cadence saved: the next evaluation uses it.",
}


def may_view(session: Session) -> None:
    rights = session.account.rights
    if Right.READ_REPORTS not in rights and Right.MANAGE_FEEDS not in rights:
        raise ForbiddenError("Your role does not allow this. Ask an administrator.")


def _sorted(rows: list[FacilityHealth], sort: str) -> list[FacilityHealth]:
    if sort == "facility":
        return sorted(rows, key=lambda f: (f.name.casefold(), f.code))
    if sort == "silence":
        return sorted(rows, key=lambda f: (f.last_data is not None, f.last_data or f.since))
    if sort == "since":
        return sorted(rows, key=lambda f: f.since)
    return rows  # the listing comes worst first


@router.get("/feed-health")
def feed_health_page(request: Request, session: Staffer) -> Response:
    may_view(session)
    sort = request.query_params.get("sort", "state")
    sort = sort if sort in SORTS else "state"
    state = request.query_params.get("state", "")
    state = state if state in WORST_FIRST else ""
    words = request.query_params.get("q", "").strip()[:100]
    with StaffState.of(request).records_engine.connect() as connection:
        rows = feed_health.listing(connection)
    counts = {name: sum(f.state == name for f in rows) for name in WORST_FIRST}
    shown = [
        f
        for f in rows
        if (not state or f.state == state)
        and (not words or words.casefold() in f"{f.code} {f.name} {f.city or ''}".casefold())
    ]

    def link(**changes: str) -> str:
        wanted = {"sort": sort, "state": state, "q": words, **changes}
        return "/feed-health?" + urlencode({k: v for k, v in wanted.items() if v})

    return page(
        request,
        "staff/feed_health.html",
        session,
        facilities=_sorted(shown, sort),
        total=len(rows),
        counts=counts,
        sort=sort,
        sorts=SORTS,
        state=state,
        states=WORST_FIRST,
        words=words,
        link=link,
    )


def _facility_page(
    request: Request, session: Session, code: str, status: int = 200, **context: Any
) -> Response:
    with StaffState.of(request).records_engine.connect() as connection:
        found = feed_health.listing(connection, code[:40])
        changes, outages = (
            feed_health.history(connection, found[0].facility_id) if found else ([], [])
        )
    if not found:
        return page(
            request,
            "staff/message.html",
            session,
            404,
            heading="No such facility",
            message="No facility with that code has been evaluated yet.",
        )
    return page(
        request,
        "staff/feed_facility.html",
        session,
        status,
        facility=found[0],
        changes=changes,
        outages=outages,
        **context,
    )


@router.get("/feed-health/{code}")
def facility_page(request: Request, code: str, session: Staffer) -> Response:
    may_view(session)
    return _facility_page(
        request, session, code, notice=DONE.get(request.query_params.get("done", ""))
    )


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


Act = Callable[[Connection, Actor, FormData, datetime], str]


async def _change(request: Request, session: Session, code: str, act: Act) -> Response:
    """Run `act` (which returns what was done) and come back to the facility's page."""
    needs(session, Right.MANAGE_FEEDS)
    form = await checked_form(request, session)
    try:
        with StaffState.of(request).records_engine.begin() as connection:
            done = act(connection, Actor(session.account.name), form, datetime.now(UTC))
    except FieldError as error:
        return _facility_page(request, session, code, 422, problem=problem_text(error))
    except RefusedError as error:
        return _facility_page(request, session, code, status_of(error), problem=f"{error}.")
    return RedirectResponse(f"/feed-health/{quote(code)}?done={done}", status_code=303)


@router.post("/feed-health/{code}/hold")
async def hold(request: Request, code: str, session: Staffer) -> Response:
    chosen = {"paused": Health.PAUSED, "closed": Health.CLOSED}

    def act(connection: Connection, actor: Actor, form: FormData, now: datetime) -> str:
        held = chosen.get(_text(form, "held"))
        if held is None:
            raise FieldError("held", "must be paused or closed")
        feed_actions.hold(connection, actor, code, held, _text(form, "reason"), now)
        return held.value

    return await _change(request, session, code, act)


@router.post("/feed-health/{code}/lift")
async def lift(request: Request, code: str, session: Staffer) -> Response:
    def act(connection: Connection, actor: Actor, form: FormData, now: datetime) -> str:
        feed_actions.hold(connection, actor, code, None, _text(form, "reason"), now)
        return "lifted"

    return await _change(request, session, code, act)


def _hours(form: FormData, name: str) -> float | None:
    """Blank: learned. Otherwise a plain number of hours (the action checks its range)."""
    raw = _text(form, name).strip()
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        raise FieldError(name, "must be a number of hours, such as 24 or 0.25") from None


@router.post("/feed-health/{code}/cadence")
async def cadence(request: Request, code: str, session: Staffer) -> Response:
    def act(connection: Connection, actor: Actor, form: FormData, now: datetime) -> str:
        names = ("roster_every", "events_every", "down_after")
        feed_actions.set_cadence(connection, actor, code, {n: _hours(form, n) for n in names}, now)
        return "cadence"

    return await _change(request, session, code, act)

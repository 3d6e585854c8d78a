"""The staff console's pages: the dashboard, the screening queue, and a person (looked up
by A-number in a form body, never a URL; then named by internal id only). Every form
carries the session's CSRF token; every change goes through `safevine.actions`."""

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Connection, func, select

from safevine.actions import persons, screening
from safevine.actions.actor import Actor
from safevine.domain.a_number import format_a_number
from safevine.domain.errors import FieldError, RefusedError
from safevine.domain.staff_roles import Right
from safevine.store.public.tables import registrations
from safevine.store.records import dashboard, protection, screening_queue
from safevine.store.records.purge import PURGED_MARK
from safevine.store.records.staff_accounts import Session
from safevine.store.schema import clear_requests
from safevine.store.schema import persons as persons_table
from safevine.web.rendering import render
from safevine.web.staff.console_session import Staffer, checked_form, needs
from safevine.web.staff.refusals import status_of
from safevine.web.staff.report import delivery_page
from safevine.web.staff.state import StaffState

router = APIRouter(include_in_schema=False)
PERSON_NOT_FOUND = "No person has that A-number."
PERSON_PURGED = (
    "This person's names, date of birth and A-number were purged when their retention "
    "period ended. Their internal id, custody events and counts remain."
)


def age(then: datetime) -> str:
    seconds = max(0, (datetime.now(UTC) - then).total_seconds())
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"


def minutes(count: int | None) -> str:
    """A cadence for people: "15 min", "12 h", "2 days"."""
    if not count:
        return "?"
    if count < 120:
        return f"{count} min"
    if count < 2 * 1440:
        return f"{count / 60:g} h"
    return f"{count / 1440:g} days"


def page(
    request: Request, template: str, session: Session | None, status: int = 200, **context: Any
) -> HTMLResponse:
    context.setdefault("notice", None)
    context.setdefault("problem", None)
    html = render(
        template,
        "en",
        session=session,
        rights={r.value for r in session.account.rights} if session else set(),
        path=request.url.path,
        age=age,
        minutes=minutes,
        format_a_number=format_a_number,
        **context,
    )
    return HTMLResponse(html, status_code=status)


def problem_text(error: Exception) -> str:
    if isinstance(error, FieldError):
        return f"{error.field.replace('_', ' ').capitalize()} {error.reason}."
    return str(error)[:1].upper() + str(error)[1:] + "."


@router.get("/")
def home(request: Request, session: Staffer) -> Response:
    with StaffState.of(request).records_engine.connect() as connection:
        board = dashboard.build(connection)
    return page(request, "staff/dashboard.html", session, board=board)


# Screening --------------------------------------------------------------------------------


def _screening_page(
    request: Request, session: Session, status: int = 200, **context: Any
) -> Response:
    facility = request.query_params.get("facility") or None
    with StaffState.of(request).records_engine.connect() as connection:
        summary = screening_queue.summary(connection)
        people = screening_queue.waiting(connection, facility[:40] if facility else None)
        places = screening_queue.facilities_waiting(connection)
    return page(
        request,
        "staff/screening.html",
        session,
        status,
        size=summary.size,
        people=people,
        facilities=places,
        facility=facility,
        **context,
    )


@router.get("/screening")
def screening_queue_page(request: Request, session: Staffer) -> Response:
    needs(session, Right.SCREEN)
    done, refused = request.query_params.get("done"), request.query_params.get("refused")
    notice = f"{done} screened." if done and done.isdigit() else None
    problem = f"{refused} could not be screened." if refused and refused.isdigit() else None
    return _screening_page(request, session, notice=notice, problem=problem)


@router.post("/screening")
async def screen(request: Request, session: Staffer) -> Response:
    needs(session, Right.SCREEN)
    form = await checked_form(request, session)
    chosen = [int(v) for v in form.getlist("person") if isinstance(v, str) and v.isdigit()]
    reason = form.get("reason")
    try:
        if not chosen:
            raise FieldError("people", "none were chosen")
        decision = screening.decision(str(form.get("decision") or ""))
        with StaffState.of(request).records_engine.begin() as connection:
            outcome = screening.screen_many(
                connection,
                Actor(session.account.name),
                chosen,
                decision,
                reason if isinstance(reason, str) else "",
                datetime.now(UTC),
            )
    except FieldError as error:
        return _screening_page(request, session, 422, problem=problem_text(error))
    if outcome.refused:
        why = "; ".join(f"{person}: {reason}" for person, reason in outcome.refused)
        return _screening_page(
            request,
            session,
            409 if not outcome.done else 200,
            notice=f"{len(outcome.done)} screened." if outcome.done else None,
            problem=f"Not screened: {why}.",
        )
    return RedirectResponse(f"/screening?done={len(outcome.done)}", status_code=303)


@router.get("/reports")
def reports(request: Request, session: Staffer) -> Response:
    needs(session, Right.READ_REPORTS)
    return delivery_page(request, session)


# A person ---------------------------------------------------------------------------------


def _registrations(connection: Connection, person_id: int) -> list[tuple[str, str, int]]:
    ref = connection.execute(
        select(persons_table.c.public_ref).where(persons_table.c.id == person_id)
    ).scalar()
    rows = connection.execute(
        select(registrations.c.channel, registrations.c.state, func.count())
        .where(registrations.c.person_ref == ref)
        .group_by(registrations.c.channel, registrations.c.state)
        .order_by(registrations.c.channel, registrations.c.state)
    ).all()
    return [(channel, state, int(count)) for channel, state, count in rows]


def _pending(connection: Connection, person_id: int) -> list[protection.ClearRequest]:
    ids = connection.execute(
        select(clear_requests.c.id).where(
            clear_requests.c.person_id == person_id,
            clear_requests.c.state == "pending",
            clear_requests.c.expires_at > datetime.now(UTC),
        )
    ).scalars()
    return [protection.pending_request(connection, int(i)) for i in ids]


@router.get("/person")
def person_form(request: Request, session: Staffer) -> Response:
    needs(session, Right.VIEW_PERSON)
    return page(request, "staff/person.html", session, view=None)


@router.post("/person")
async def person_lookup(request: Request, session: Staffer) -> Response:
    needs(session, Right.VIEW_PERSON)
    form = await checked_form(request, session)
    typed = form.get("a_number")
    try:
        with StaffState.of(request).records_engine.connect() as connection:
            found = persons.find(connection, typed if isinstance(typed, str) else "")
    except (FieldError, RefusedError) as error:
        problem = PERSON_NOT_FOUND if isinstance(error, RefusedError) else problem_text(error)
        return page(request, "staff/person.html", session, 404, view=None, problem=problem)
    return RedirectResponse(f"/person/{found.id}", status_code=303)


@router.get("/person/ref/{public_ref}")
def person_by_ref(request: Request, public_ref: str, session: Staffer) -> Response:
    """A person by the public reference an operations alert names (a search crowd)."""
    needs(session, Right.VIEW_PERSON)
    with StaffState.of(request).records_engine.connect() as connection:
        person_id = connection.execute(
            select(persons_table.c.id).where(persons_table.c.public_ref == public_ref[:32])
        ).scalar()
    if person_id is None:
        return page(request, "staff/person.html", session, 404, view=None, problem=PERSON_NOT_FOUND)
    return RedirectResponse(f"/person/{person_id}", status_code=303)


@router.get("/person/{person_id}")
def person_page(request: Request, person_id: int, session: Staffer) -> Response:
    needs(session, Right.VIEW_PERSON)
    notice = {
        "protected": "Protected: hidden everywhere, queued messages cancelled.",
        "asked": "Clear requested: a supervisor other than you must confirm it.",
        "cleared": "Cleared.",
    }.get(request.query_params.get("done", ""))
    return _person(request, session, person_id, notice=notice)


def _person(
    request: Request, session: Session, person_id: int, status: int = 200, **context: Any
) -> Response:
    now = datetime.now(UTC)
    with StaffState.of(request).records_engine.begin() as connection:
        a_number = connection.execute(
            select(persons_table.c.a_number).where(persons_table.c.id == person_id)
        ).scalar()
        if a_number is None or person_id <= 0:
            return page(
                request, "staff/person.html", session, 404, view=None, problem=PERSON_NOT_FOUND
            )
        if str(a_number).startswith(PURGED_MARK):
            return page(
                request, "staff/person.html", session, 410, view=None, problem=PERSON_PURGED
            )
        view = persons.view(connection, Actor(session.account.name), a_number, now)
        counts = _registrations(connection, person_id)
        pending = _pending(connection, person_id)
    return page(
        request,
        "staff/person.html",
        session,
        status,
        view=view,
        registrations=counts,
        pending=pending,
        **context,
    )


async def _act(
    request: Request, session: Session, person_id: int, right: Right, done: str, act: Any
) -> Response:
    needs(session, right)
    form = await checked_form(request, session)
    reason = form.get("reason")
    try:
        with StaffState.of(request).records_engine.begin() as connection:
            act(connection, reason if isinstance(reason, str) else "")
    except (FieldError, RefusedError) as error:
        return _person(request, session, person_id, 422, problem=problem_text(error))
    return RedirectResponse(f"/person/{person_id}?done={done}", status_code=303)


def _a_number(connection: Connection, person_id: int) -> str:
    a_number = connection.execute(
        select(persons_table.c.a_number).where(persons_table.c.id == person_id)
    ).scalar()
    if a_number is None or person_id <= 0:
        raise FieldError("person", "does not exist")
    if str(a_number).startswith(PURGED_MARK):
        raise FieldError("person", "was purged: nothing identifies them any more")
    return str(a_number)


@router.post("/person/{person_id}/protect")
async def protect(request: Request, person_id: int, session: Staffer) -> Response:
    def act(connection: Connection, reason: str) -> None:
        persons.protect(
            connection,
            Actor(session.account.name),
            _a_number(connection, person_id),
            reason,
            datetime.now(UTC),
        )

    return await _act(request, session, person_id, Right.PROTECT, "protected", act)


@router.post("/person/{person_id}/clear")
async def ask_clear(request: Request, person_id: int, session: Staffer) -> Response:
    def act(connection: Connection, reason: str) -> None:
        persons.clear(
            connection,
            Actor(session.account.name),
            _a_number(connection, person_id),
            reason,
            datetime.now(UTC),
            two_person=True,
        )

    return await _act(request, session, person_id, Right.REQUEST_CLEAR, "asked", act)


@router.post("/clear-requests/{request_id}/confirm")
async def confirm_clear(request: Request, request_id: int, session: Staffer) -> Response:
    needs(session, Right.CONFIRM_CLEAR)
    await checked_form(request, session)
    try:
        with StaffState.of(request).records_engine.begin() as connection:
            person_id = persons.confirm_clear(
                connection, Actor(session.account.name), request_id, datetime.now(UTC)
            )
    except RefusedError as error:
        return page(
            request,
            "staff/message.html",
            session,
            status_of(error),
            heading="The clear was not confirmed",
            message=problem_text(error),
        )
    return RedirectResponse(f"/person/{person_id}?done=cleared", status_code=303)

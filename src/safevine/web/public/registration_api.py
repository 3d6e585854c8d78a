"""The registration API: start, confirm, see and end a registration."""

from collections.abc import Callable
from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from safevine.i18n import negotiate, translations
from safevine.store.public import registrations
from safevine.web.public import registration_flow
from safevine.web.public.search_query import Problem
from safevine.web.state import AppState, client_address

router = APIRouter(prefix="/api/v1/registrations", tags=["registrations"])


class QuietHoursBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: str = Field(max_length=5, examples=["21:00"])
    end: str = Field(max_length=5, examples=["08:00"])
    time_zone: str = Field(default="America/New_York", max_length=64)


class RegistrationBody(BaseModel):
    """Register to be told when a person's custody changes. Only channel, address and
    language are required besides the person; every answer is the same whoever it is."""

    model_config = ConfigDict(extra="forbid")
    person: str = Field(max_length=64, description="The `reference` from a search result.")
    channel: str = Field(max_length=10, examples=["email", "sms", "voice", "webhook"])
    address: str = Field(max_length=320)
    language: str = Field(max_length=2, examples=["en", "es"])
    wording: str = Field(default="standard", max_length=10, examples=["standard", "discreet"])
    events: list[str] | None = Field(default=None, max_length=10)
    quiet_hours: QuietHoursBody | None = None
    allow_voicemail: bool = True
    pin: str | None = Field(
        default=None,
        max_length=8,
        description="For `voice`: the 4-digit PIN that confirms a call (required there).",
    )


class StartedResponse(BaseModel):
    registration: str = Field(description="Send this back with the code to confirm.")
    status: str
    expires_at: str


class ConfirmBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    registration: str = Field(max_length=100)
    code: str = Field(max_length=12)


class ConfirmedResponse(BaseModel):
    status: str
    manage_token: str
    manage_url: str
    webhook_secret: str | None = None


class RegistrationResponse(BaseModel):
    number: int
    channel: str
    address: str
    language: str
    wording: str
    events: list[str]
    quiet_hours: dict[str, str] | None
    allow_voicemail: bool
    status: str
    status_text: str
    ended_reason: str | None
    address_bouncing: bool = Field(
        default=False, description="Mail to the address bounced: messages are not arriving."
    )


def _language(request: Request) -> str:
    return negotiate(request.query_params.get("lang"), request.headers.get("accept-language"))


@router.post(
    "",
    status_code=202,
    response_model=StartedResponse,
    summary="Register (a code is sent to the address to confirm it)",
)
def start(body: RegistrationBody, request: Request) -> JSONResponse:
    state = AppState.of(request)
    gettext = translations(_language(request)).gettext
    raw = body.model_dump()
    outcome = registration_flow.start(state, client_address(request), raw)
    if outcome.retry_after is not None:
        return JSONResponse(
            {"error": gettext("Too many requests. Please wait and try again.")},
            status_code=429,
            headers={"Retry-After": str(outcome.retry_after)},
        )
    if outcome.problems:
        errors = [{"field": p.field, "message": p.text(gettext)} for p in outcome.problems]
        return JSONResponse({"errors": errors}, status_code=422)
    assert outcome.started is not None
    return JSONResponse(
        {
            "registration": outcome.started.pending_token,
            "status": registrations.PENDING,
            "expires_at": outcome.started.expires_at.isoformat(),
        },
        status_code=202,
    )


@router.post("/confirm", response_model=ConfirmedResponse, summary="Confirm with the code")
def confirm(body: ConfirmBody, request: Request) -> JSONResponse:
    state = AppState.of(request)
    gettext = translations(_language(request)).gettext
    result = registration_flow.confirm(state, body.registration, body.code)
    if isinstance(result, Problem):
        return JSONResponse(
            {"errors": [{"field": result.field, "message": result.text(gettext)}]},
            status_code=422,
        )
    answer = {
        "status": "confirmed",
        "manage_token": result.manage_token,
        "manage_url": f"{state.settings.public_base_url}/m/{result.manage_token}",
    }
    if result.webhook_secret:
        answer["webhook_secret"] = result.webhook_secret
    return JSONResponse(answer)


@router.get("/{manage_token}", response_model=RegistrationResponse, summary="See a registration")
async def show(manage_token: str, request: Request) -> JSONResponse:
    state = AppState.of(request)
    gettext = translations(_language(request)).gettext

    def read() -> registrations.RegistrationView | None:
        with state.public_engine.begin() as connection:
            return registrations.by_manage_token(connection, manage_token, datetime.now(UTC))

    view = await run_in_threadpool(read)
    if view is None:
        return JSONResponse({"error": gettext("Not found.")}, status_code=404)
    return JSONResponse(describe(view, gettext))


@router.delete("/{manage_token}", status_code=204, summary="End a registration")
def end(manage_token: str, request: Request) -> Response:
    state = AppState.of(request)
    with state.public_engine.begin() as connection:
        found = registrations.end_by_manage_token(connection, manage_token, datetime.now(UTC))
    if not found:
        message = translations(_language(request)).gettext("Not found.")
        return JSONResponse({"error": message}, status_code=404)
    return Response(status_code=204)


def describe(
    view: registrations.RegistrationView, gettext: Callable[[str], str]
) -> dict[str, object]:
    quiet = (
        {"start": view.quiet_start, "end": view.quiet_end, "time_zone": view.time_zone or ""}
        if view.quiet_start and view.quiet_end
        else None
    )
    reason = registration_flow.END_REASON_TEXT.get(view.end_reason or "")
    return {
        "number": view.number,
        "channel": view.channel,
        "address": view.address_hint,
        "language": view.language,
        "wording": view.wording,
        "events": view.events,
        "quiet_hours": quiet,
        "allow_voicemail": view.allow_voicemail,
        "status": view.state,
        "status_text": gettext(registration_flow.STATUS_TEXT[view.state]),
        "ended_reason": gettext(reason) if reason else None,
        "address_bouncing": view.bounced_at is not None,
    }

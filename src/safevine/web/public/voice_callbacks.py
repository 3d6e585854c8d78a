"""What the voice provider tells safevine during and after a call: the keys the registrant
pressed (their PIN acknowledges the call, 9 says it again) and the call's status (no
answer, busy, an answering machine, answered), which decides whether it is placed again
(`domain.call_repeats`).

Heard only when signed with the provider's token, as inbound texts are. A request about
a call that is not ours, or no longer waiting, is answered like any other: a hang-up, or
an empty 204; nothing in an answer depends on a person.
"""

import logging
from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from safevine.domain.notification_state import ABOUT_A_PERSON
from safevine.notify import voice_script
from safevine.notify.compose import compose
from safevine.store.public import calls, delivery
from safevine.store.public.calls import Gathered, Pressed
from safevine.store.public.registrations import ACTIVE
from safevine.store.write_priority import claim_turn
from safevine.web.public.sms_inbound import signed_form
from safevine.web.state import AppState

log = logging.getLogger("safevine.web")
router = APIRouter(prefix="/api/v1/voice", tags=["voice provider"])
XML = "application/xml"


def _xml(body: str) -> Response:
    return Response(f'<?xml version="1.0" encoding="UTF-8"?>{body}', media_type=XML)


@router.post("/gather", summary="Keys pressed during a call, from the voice provider")
async def gather(request: Request) -> Response:
    state = AppState.of(request)
    form = await signed_form(request)
    if form is None:
        return Response(status_code=403)
    try:
        tries = max(1, min(int(request.query_params.get("try", "1")), 99))
    except ValueError:
        tries = 1
    key = request.query_params.get(voice_script.KEY)
    got = await run_in_threadpool(
        _gather, state, form.get("CallSid", ""), form.get("Digits", ""), key
    )
    url = voice_script.callback_url(state.settings.public_base_url, voice_script.GATHER_PATH, key)
    if got.pressed == Pressed.ACKNOWLEDGED:
        return _xml(voice_script.thanks(got.language))
    if got.pressed == Pressed.WRONG:
        return _xml(voice_script.again(got.language, url, tries + 1))
    if got.pressed == Pressed.REPLAY and got.notification_id is not None:
        words = await run_in_threadpool(_words, state, got.notification_id)
        if words is not None:
            spoken = voice_script.spoken(words, got.language)
            return _xml(voice_script.ask_for_pin(spoken, got.language, url, tries))
    return _xml(voice_script.HANG_UP)


def _gather(state: AppState, call_sid: str, digits: str, key: str | None) -> Gathered:
    with state.public_engine.begin() as connection:
        claim_turn(connection)  # as a call's status does (`provider_reports`)
        return calls.gather(
            connection, call_sid, digits, datetime.now(UTC), key, _first_provider(state)
        )


def _first_provider(state: AppState) -> str:
    """The provider a call went through when its claim fixed none (the first)."""
    return state.settings.phone_providers()[0].name


def _words(state: AppState, notification_id: int) -> str | None:
    """The call's words again, if its person is still public and its registration still
    active (a protection since the call began ends it here)."""
    with state.public_engine.connect() as connection:
        o = delivery.outgoing(connection, notification_id)
        if o is None or o.registration_state != ACTIVE or o.purpose not in ABOUT_A_PERSON:
            return None
        public = delivery.people(connection, [o.person_ref])
        if o.person_ref not in public:
            return None
        return compose(o, public, state.vault, state.settings).rendered.voice


@router.post("/status", summary="Call status callback for the voice provider", status_code=204)
async def status(request: Request) -> Response:
    state = AppState.of(request)
    form = await signed_form(request)
    if form is None:
        return Response(status_code=403)
    key = request.query_params.get(voice_script.KEY)
    call_sid = form.get("CallSid", "")
    applied = await state.reports.apply(
        call_sid,
        lambda connection, retry_after: calls.record_status(
            connection,
            call_sid,
            form.get("CallStatus", ""),
            form.get("AnsweredBy"),
            form.get("ErrorCode") or None,
            datetime.now(UTC),
            state.settings.call_repeats,
            retry_after,
            key,
            _first_provider(state),
        ),
    )
    log.info("call status: %s", applied.value)
    return Response(status_code=204)

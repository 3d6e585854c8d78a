"""Inbound SMS from the provider: a reply of STOP (or PARAR, and the usual synonyms) ends
every registration of that number at once. Nothing is sent back unless configured.

Only a request signed with the provider's auth token (SAFEVINE_SMS_AUTH_TOKEN) is heard;
without a token configured every request is refused."""

import base64
import hashlib
import hmac
import logging
from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from safevine.domain.contact_address import Channel, normalise_address
from safevine.domain.errors import FieldError
from safevine.store.public import registrations
from safevine.web.state import AppState

log = logging.getLogger("safevine.web")
router = APIRouter(prefix="/api/v1/sms", tags=["sms provider"])

STOP_WORDS = frozenset(
    {
        "STOP",
        "STOPALL",
        "UNSUBSCRIBE",
        "CANCEL",
        "END",
        "QUIT",
        "PARAR",
        "ALTO",
        "CANCELAR",
        "BAJA",
        "FIN",
        "DETENER",
    }
)
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def twilio_signature(token: str, url: str, form: dict[str, str]) -> str:
    """Twilio's scheme: HMAC-SHA1 over the URL and the sorted form fields, base64."""
    payload = url + "".join(f"{key}{form[key]}" for key in sorted(form))
    digest = hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


@router.post("/inbound", summary="Inbound SMS webhook for the SMS provider")
async def inbound(request: Request) -> Response:
    state = AppState.of(request)
    token = state.settings.sms_auth_token
    if not token:
        # Without the provider's token nothing can tell the provider from anyone else, and
        # an unsigned STOP would end any number's registrations.
        log.warning("inbound SMS refused: SAFEVINE_SMS_AUTH_TOKEN is not set")
        return Response(status_code=403)
    form = {k: str(v) for k, v in (await request.form()).items()}
    url = f"{state.settings.public_base_url}{request.url.path}"
    expected = twilio_signature(token, url, form)
    if not hmac.compare_digest(expected, request.headers.get("x-twilio-signature", "")):
        return Response(status_code=403)
    words = form.get("Body", "").strip().upper().split()
    if words and words[0] in STOP_WORDS:
        try:
            number = normalise_address(Channel.SMS, form.get("From", ""))
        except FieldError:
            number = None
        if number:
            # In a thread: the write may wait for a worker's transaction (SQLite has one
            # writer), and the event loop must go on meanwhile.
            await run_in_threadpool(_stop, state, number)
    return Response(EMPTY_TWIML, media_type="application/xml")


def _stop(state: AppState, number: str) -> None:
    with state.public_engine.begin() as connection:
        for channel in (Channel.SMS, Channel.VOICE):
            registrations.end_by_address(
                connection, state.vault, channel, number, datetime.now(UTC)
            )

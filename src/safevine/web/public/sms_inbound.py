"""What the SMS provider tells safevine: inbound texts and delivery receipts.

- A reply of STOP (or PARAR, and the usual synonyms) ends every registration of that
  number at once; a reply of YES (OK, SI) acknowledges the latest message about a person
  that reached it. Nothing is sent back.
- A status callback (`queued`, `sent`, `delivered`, `undelivered`, `failed`) moves the
  notification it reports on (`store.public.receipts`). Voice calls report theirs
  likewise.

Only a request signed with the provider's auth token (SAFEVINE_SMS_AUTH_TOKEN) is heard;
without a token configured every request is refused. The answer never depends on whether
a number or a message id is known, so these endpoints tell a caller nothing.
"""

import base64
import hashlib
import hmac
import logging
from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from safevine.domain.contact_address import Channel, normalise_address
from safevine.domain.errors import FieldError
from safevine.store.public import receipts, registrations
from safevine.store.write_priority import claim_turn
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


ACK_WORDS = frozenset({"YES", "Y", "OK", "OKAY", "SI", "SÍ"})


async def signed_form(request: Request) -> dict[str, str] | None:
    """The request's form when the provider signed it; None otherwise."""
    state = AppState.of(request)
    # Any configured provider may call: each signs with its own token (failover).
    tokens = [p.auth_token for p in state.settings.phone_providers() if p.auth_token]
    if not tokens:
        # Without the provider's token nothing can tell the provider from anyone else, and
        # an unsigned STOP would end any number's registrations.
        log.warning("provider request refused: SAFEVINE_SMS_AUTH_TOKEN is not set")
        return None
    form = {k: str(v) for k, v in (await request.form()).items()}
    # The URL the provider called, query included, as it signed it.
    query = f"?{request.url.query}" if request.url.query else ""
    url = f"{state.settings.public_base_url}{request.url.path}{query}"
    given = request.headers.get("x-twilio-signature", "")
    # Every token is tried, so the time taken does not say which one matched.
    matched = [hmac.compare_digest(twilio_signature(t, url, form), given) for t in tokens]
    return form if any(matched) else None


@router.post("/inbound", summary="Inbound SMS webhook for the SMS provider")
async def inbound(request: Request) -> Response:
    state = AppState.of(request)
    form = await signed_form(request)
    if form is None:
        return Response(status_code=403)
    words = form.get("Body", "").strip().upper().split()
    first = words[0].strip(".!") if words else ""
    if first in STOP_WORDS or first in ACK_WORDS:
        try:
            number = normalise_address(Channel.SMS, form.get("From", ""))
        except FieldError:
            number = None
        if number:
            # In a thread: the write may wait for a worker's transaction (SQLite has one
            # writer), and the event loop must go on meanwhile.
            act = _stop if first in STOP_WORDS else _acknowledge
            await run_in_threadpool(act, state, number)
    return Response(EMPTY_TWIML, media_type="application/xml")


@router.post("/status", summary="Delivery status callback for the SMS provider", status_code=204)
async def status(request: Request) -> Response:
    state = AppState.of(request)
    form = await signed_form(request)
    if form is None:
        return Response(status_code=403)
    receipt = receipts.Receipt(
        form.get("MessageSid") or form.get("SmsSid") or "",
        form.get("MessageStatus") or form.get("SmsStatus") or "",
        form.get("ErrorCode") or None,
    )
    applied = await state.reports.apply(
        receipt.provider_message_id,
        lambda connection, retry_after: receipts.apply_receipt(
            connection, receipt, datetime.now(UTC), retry_after
        ),
    )
    log.info("SMS receipt %s: %s", receipt.status[:20], applied.value)
    return Response(status_code=204)


def _acknowledge(state: AppState, number: str) -> None:
    index = state.vault.blind_index(Channel.SMS.value, number)
    with state.public_engine.begin() as connection:
        claim_turn(connection)  # as a receipt does (`provider_reports`)
        receipts.acknowledge_latest(connection, index, Channel.SMS, datetime.now(UTC))


def _stop(state: AppState, number: str) -> None:
    with state.public_engine.begin() as connection:
        claim_turn(connection)  # as a receipt does (`provider_reports`)
        for channel in (Channel.SMS, Channel.VOICE):
            registrations.end_by_address(
                connection, state.vault, channel, number, datetime.now(UTC)
            )

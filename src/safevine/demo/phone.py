"""The demo's phone: a Twilio-compatible provider that keeps the texts and calls safevine
sends, so a newcomer who registers by text or call sees them arrive on the demo inbox page,
and can reply STOP as a real phone would (the reply reaches safevine signed, as the real
provider signs it). Only ever mounted in demo mode, and the demo listens on 127.0.0.1.

It is a router of the demo's own app: the worker runs in the same event loop as the web
server, and its requests here are answered by async routes that touch no database, so a
send never waits on anything the worker holds.
"""

import base64
import binascii
import hmac
import secrets
import threading
import xml.etree.ElementTree as ElementTree
from collections import deque
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Literal

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from safevine.config import Settings
from safevine.web.public.pages import form_token_ok
from safevine.web.public.sms_inbound import twilio_signature

KEPT = 200
PREFIX = "/demo/provider"
# The demo's own sending number, shown as the sender of every text and call.
DEMO_NUMBER = "+15550000000"
# A call's script is small; anything larger is not ours and is not parsed.
_LONGEST_SCRIPT = 20_000


@dataclass(frozen=True)
class Ring:
    """A text or a call as the phone received it."""

    kind: Literal["text", "call"]
    received_at: datetime
    to: str
    text: str


class Phone:
    """The latest texts and calls, newest first."""

    def __init__(self) -> None:
        self._rings: deque[Ring] = deque(maxlen=KEPT)
        self._lock = threading.Lock()

    def receive(self, ring: Ring) -> None:
        with self._lock:
            self._rings.appendleft(ring)

    def rings(self) -> list[Ring]:
        with self._lock:
            return list(self._rings)


def with_phone(settings: Settings, base_url: str) -> Settings:
    """`settings` with the worker pointed at this phone, and a token made for this run (so
    the inbound route, which refuses unsigned replies, hears the phone's)."""
    return replace(
        settings,
        sms_api_base=f"{base_url}{PREFIX}",
        sms_account_sid="ACdemo",
        sms_auth_token=secrets.token_urlsafe(24),
        sms_from=DEMO_NUMBER,
        voice_from=DEMO_NUMBER,
    )


def spoken(twiml: str) -> str:
    """The words a call says: the text of its `<Say>` elements, one per line."""
    if len(twiml) > _LONGEST_SCRIPT:
        return ""
    try:
        root = ElementTree.fromstring(twiml)  # noqa: S314 - our own TwiML, size-capped
    except ElementTree.ParseError:
        return ""
    return "\n".join((say.text or "").strip() for say in root.iter("Say"))


def _authorised(request: Request, settings: Settings) -> bool:
    """HTTP basic auth with the account SID and token, as the real provider asks."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, password = base64.b64decode(encoded).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return hmac.compare_digest(user, settings.sms_account_sid) and hmac.compare_digest(
        password, settings.sms_auth_token
    )


def phone_router(phone: Phone, settings: Settings) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.post(PREFIX + "/2010-04-01/Accounts/{account}/{resource}.json")
    async def provider(account: str, resource: str, request: Request) -> Response:
        if account != settings.sms_account_sid or not _authorised(request, settings):
            return JSONResponse({"code": 20003, "message": "Authenticate"}, status_code=401)
        form = await request.form()
        to = str(form.get("To") or "")
        if resource == "Messages":
            phone.receive(Ring("text", datetime.now(UTC), to, str(form.get("Body") or "")))
            sid = "SM" + secrets.token_hex(16)
        elif resource == "Calls":
            words = spoken(str(form.get("Twiml") or ""))
            phone.receive(Ring("call", datetime.now(UTC), to, words))
            sid = "CA" + secrets.token_hex(16)
        else:
            return JSONResponse({"code": 20404, "message": "Not found"}, status_code=404)
        return JSONResponse({"sid": sid, "status": "queued"}, status_code=201)

    @router.post("/demo/phone/reply")
    async def reply(request: Request) -> Response:
        """Reply STOP from a number, as its owner would from the phone: the provider then
        posts the reply to safevine, signed with the account's token."""
        form = await request.form()
        language = str(form.get("lang") or "en")
        if form_token_ok(request, form.get("csrf_token")):
            await _send_reply(settings, str(form.get("From") or ""), "STOP")
        return RedirectResponse(f"/demo/inbox?lang={language}", status_code=303)

    return router


async def _send_reply(settings: Settings, number: str, body: str) -> None:
    url = f"{settings.public_base_url}/api/v1/sms/inbound"
    sid = "SM" + secrets.token_hex(16)
    form = {"From": number, "To": DEMO_NUMBER, "Body": body, "MessageSid": sid}
    signature = twilio_signature(settings.sms_auth_token, url, form)
    async with httpx.AsyncClient(timeout=10) as client:
        await client.post(url, data=form, headers={"X-Twilio-Signature": signature})

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
from fastapi import APIRouter, BackgroundTasks, Request
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
    """A text or a call as the phone received it. A call that asks for a PIN rings until
    the newcomer answers it on the inbox page (or lets it go unanswered)."""

    kind: Literal["text", "call"]
    received_at: datetime
    to: str
    text: str
    sid: str = ""
    # Where the keys pressed go (the PIN prompt's action) and the call's status goes.
    gather_url: str | None = None
    status_url: str | None = None
    # What was pressed, and what the call said after each; the call's end, once over.
    pressed: tuple[str, ...] = ()
    ended: str | None = None

    @property
    def ringing(self) -> bool:
        return self.kind == "call" and self.gather_url is not None and self.ended is None


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

    def ring(self, sid: str) -> Ring | None:
        with self._lock:
            return next((r for r in self._rings if sid and r.sid == sid), None)

    def update(self, sid: str, **changes: object) -> None:
        with self._lock:
            for n, ring in enumerate(self._rings):
                if ring.sid == sid:
                    self._rings[n] = replace(ring, **changes)  # type: ignore[arg-type]


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
    """The words a call says, one `<Say>` a line, up to where it waits for keys: what
    follows a `<Gather>` is said only when no key comes, and on the demo's phone one always
    does (or the call goes unanswered), so showing it would read as a failure."""
    if len(twiml) > _LONGEST_SCRIPT:
        return ""
    try:
        root = ElementTree.fromstring(twiml)  # noqa: S314 - our own TwiML, size-capped
    except ElementTree.ParseError:
        return ""
    said: list[str] = []
    for element in root:
        said += [(say.text or "").strip() for say in element.iter("Say")]
        if element.tag == "Gather":
            break
    return "\n".join(said)


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
    async def provider(
        account: str, resource: str, request: Request, tasks: BackgroundTasks
    ) -> Response:
        if account != settings.sms_account_sid or not _authorised(request, settings):
            return JSONResponse({"code": 20003, "message": "Authenticate"}, status_code=401)
        form = await request.form()
        to = str(form.get("To") or "")
        status_url = str(form.get("StatusCallback") or "") or None
        if resource == "Messages":
            sid = "SM" + secrets.token_hex(16)
            phone.receive(Ring("text", datetime.now(UTC), to, str(form.get("Body") or ""), sid))
            if status_url:
                # The handset has it: the carrier's receipt, as a real one would send.
                tasks.add_task(
                    _signed_post,
                    settings,
                    status_url,
                    {"MessageSid": sid, "MessageStatus": "delivered"},
                )
        elif resource == "Calls":
            script = str(form.get("Twiml") or "")
            sid = "CA" + secrets.token_hex(16)
            gather = gather_action(script)
            phone.receive(
                Ring("call", datetime.now(UTC), to, spoken(script), sid, gather, status_url)
            )
            if status_url and gather is None:
                # A call that asks nothing (a code) is answered and heard at once.
                answered = {"CallSid": sid, "CallStatus": "completed", "AnsweredBy": "human"}
                tasks.add_task(_signed_post, settings, status_url, answered)
        else:
            return JSONResponse({"code": 20404, "message": "Not found"}, status_code=404)
        return JSONResponse({"sid": sid, "status": "queued"}, status_code=201)

    @router.post("/demo/phone/answer")
    async def answer(request: Request) -> Response:
        """Answer a ringing call and press keys (a PIN, or 9), or let it go unanswered, as
        its owner would: the provider posts what happened to safevine, signed."""
        form = await request.form()
        language = str(form.get("lang") or "en")
        ring = phone.ring(str(form.get("sid") or ""))
        if form_token_ok(request, form.get("csrf_token")) and ring and ring.ringing:
            keys = str(form.get("keys") or "")[:8]
            if form.get("action") == "unanswered" or not keys:
                await _end_call(settings, phone, ring, "no-answer")
            else:
                await _press(settings, phone, ring, keys)
        return RedirectResponse(
            f"/demo/inbox?lang={language}#call-{ring.sid if ring else ''}", status_code=303
        )

    @router.post("/demo/phone/reply")
    async def reply(request: Request) -> Response:
        """Reply STOP from a number, as its owner would from the phone: the provider then
        posts the reply to safevine, signed with the account's token."""
        form = await request.form()
        language = str(form.get("lang") or "en")
        word = "YES" if form.get("word") == "YES" else "STOP"
        if form_token_ok(request, form.get("csrf_token")):
            await _send_reply(settings, str(form.get("From") or ""), word)
        return RedirectResponse(f"/demo/inbox?lang={language}", status_code=303)

    return router


def gather_action(twiml: str) -> str | None:
    """Where a call's PIN prompt posts the keys pressed, if it has one."""
    if len(twiml) > _LONGEST_SCRIPT:
        return None
    try:
        root = ElementTree.fromstring(twiml)  # noqa: S314 - our own TwiML, size-capped
    except ElementTree.ParseError:
        return None
    found = root.find(".//Gather")
    return None if found is None else found.get("action")


async def _signed_post(settings: Settings, url: str, form: dict[str, str]) -> str:
    """Post to safevine as the provider does, signed with the account's token."""
    signature = twilio_signature(settings.sms_auth_token, url, form)
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.post(url, data=form, headers={"X-Twilio-Signature": signature})
    return answer.text


async def _press(settings: Settings, phone: Phone, ring: Ring, keys: str) -> None:
    assert ring.gather_url is not None
    script = await _signed_post(settings, ring.gather_url, {"CallSid": ring.sid, "Digits": keys})
    body = script.split("?>", 1)[-1]
    heard = f"{ring.text}\n\n[{keys}]\n{spoken(body)}"
    follow = gather_action(body)
    phone.update(ring.sid, text=heard, pressed=(*ring.pressed, keys), gather_url=follow)
    if follow is None:
        await _end_call(settings, phone, replace(ring, gather_url=None), "completed")


async def _end_call(settings: Settings, phone: Phone, ring: Ring, status: str) -> None:
    phone.update(ring.sid, ended=status, gather_url=None)
    if ring.status_url:
        form = {"CallSid": ring.sid, "CallStatus": status}
        if status == "completed":
            form["AnsweredBy"] = "human"
        await _signed_post(settings, ring.status_url, form)


async def _send_reply(settings: Settings, number: str, body: str) -> None:
    url = f"{settings.public_base_url}/api/v1/sms/inbound"
    sid = "SM" + secrets.token_hex(16)
    form = {"From": number, "To": DEMO_NUMBER, "Body": body, "MessageSid": sid}
    signature = twilio_signature(settings.sms_auth_token, url, form)
    async with httpx.AsyncClient(timeout=10) as client:
        await client.post(url, data=form, headers={"X-Twilio-Signature": signature})

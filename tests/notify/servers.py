"""Real peers on loopback for delivery tests: an SMTP server (aiosmtpd) that records what it
accepts and when, and an HTTP server standing in for the SMS/voice provider and for a
webhook receiver. Both stop when their block ends."""

import asyncio
import email
import smtplib
import threading
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

import httpx
from aiosmtpd.controller import Controller
from fastapi import BackgroundTasks, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from safevine.web.public.sms_inbound import twilio_signature
from safevine.web.server import background_server, free_port


@dataclass
class Received:
    at: float
    recipients: list[str]
    message: Message
    sender: str = ""  # the envelope's MAIL FROM: where a bounce goes

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])

    @property
    def text(self) -> str:
        parts = [p for p in self.message.walk() if p.get_content_type() == "text/plain"]
        return str(parts[0].get_payload(decode=True).decode()) if parts else ""


@dataclass
class SmtpSink:
    """Accepts every message; `delay` slows each one, to hold a batch in flight. A
    recipient in `refused` is answered 550 at RCPT, one in `greylisted` 450 (as greylisting
    servers answer a first attempt), and while `busy` is set every MAIL is answered 451
    (try again later)."""

    port: int
    received: list[Received] = field(default_factory=list)
    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    refused: set[str] = field(default_factory=set)
    greylisted: set[str] = field(default_factory=set)
    busy: bool = False

    async def handle_MAIL(  # noqa: N802
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.busy:
            return "451 4.3.2 try again later"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(  # noqa: N802
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address in self.refused:
            return "550 5.1.1 no such mailbox"
        if address in self.greylisted:
            return "450 4.7.1 greylisted, try again later"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.delay:
            await asyncio.sleep(self.delay)
        parsed = email.message_from_bytes(envelope.content)
        with self.lock:
            self.received.append(
                Received(time.time(), list(envelope.rcpt_tos), parsed, envelope.mail_from)
            )
        return "250 OK accepted"

    def bounce(self, received: Received, port: int, status: str = "5.1.1") -> None:
        """As a relay does once delivery failed after it took a message: a delivery status
        notification (RFC 3464) to the message's return path, by SMTP to `port`."""
        [recipient] = received.recipients
        action = "failed" if status.startswith("5") else "delayed"
        report = (
            "From: MAILER-DAEMON@relay.example\r\n"
            f"To: {received.sender}\r\n"
            "Subject: Delivery Status Notification\r\n"
            "MIME-Version: 1.0\r\n"
            'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n'
            "\r\n--B\r\nContent-Type: text/plain\r\n\r\n"
            f"Your message to {recipient} could not be delivered.\r\n"
            "\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\n"
            "Reporting-MTA: dns; relay.example\r\n\r\n"
            f"Final-Recipient: rfc822; {recipient}\r\nAction: {action}\r\nStatus: {status}\r\n"
            f"Diagnostic-Code: smtp; {status[0]}50 {status} mailbox problem\r\n"
            "\r\n--B--\r\n"
        )
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.sendmail("", [received.sender], report.encode())

    def wait_for(self, count: int, timeout: float = 60) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.05)
        raise AssertionError(f"SMTP got {len(self.received)} messages, expected {count}")


@contextmanager
def smtp_sink(port: int | None = None, delay: float = 0.0) -> Iterator[SmtpSink]:
    sink = SmtpSink(port or free_port(), delay=delay)
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


@dataclass
class Provider:
    """A Twilio-compatible API and a webhook receiver, recording every request."""

    base: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    # Numbers the provider refuses as invalid (a permanent failure).
    invalid_numbers: set[str] = field(default_factory=set)
    # Answer 503 to this many requests first (a transient failure).
    fail_next: int = 0
    # Take texts and say nothing more of them: no receipt ever comes.
    silent: bool = False
    # Seconds before answering a request (a slow provider: a worker can die meanwhile,
    # the call placed all the same), and a call rings before its outcome. A request is
    # placed as asked every time, whatever its I-Twilio-Idempotency-Token: tests count
    # the tokens to see an attempt sent twice.
    answer_delay: float = 0.0
    ring_seconds: float = 0.0
    _ringing: set[Any] = field(default_factory=set)
    # What the webhook receiver answers instead of 200: (status, body, headers).
    hook_answer: tuple[int, bytes, dict[str, str]] | None = None
    # Delivery receipts, as a carrier reports them: for a text with a StatusCallback, the
    # provider posts `sent` and then the next outcome queued for its number here, or
    # `delivered`: (status, error code). Signed with `auth_token`, as Twilio signs.
    auth_token: str = ""
    outcomes: dict[str, list[tuple[str, str | None]]] = field(default_factory=dict)
    # Each receipt posted: (message sid, status, the app's HTTP answer).
    callbacks: list[tuple[str, str, int]] = field(default_factory=list)

    # Calls, as people answer them: for a call with a StatusCallback, the next script
    # queued for its number, or "answered" (a person listened and pressed nothing):
    # "no-answer", "busy", "machine", "answered", "failed:<code>", or "pin:<keys>,<keys>"
    # (answered, and these keys pressed in turn, each at the PIN prompt then current).
    calls: dict[str, list[str]] = field(default_factory=dict)
    # What each call said (its <Say> texts, the script and every answer to a key) and
    # what was pressed: (call sid, "said" or "pressed", text).
    heard: list[tuple[str, str, str]] = field(default_factory=list)
    # The language of each <Say>, in order.
    voices: list[str] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.base.rsplit(":", 1)[1])

    async def ring(self, sid: str, to: str, twiml: str, status_url: str) -> None:
        await asyncio.sleep(self.ring_seconds)
        await self.answer_call(sid, to, twiml, status_url)

    async def answer_call(self, sid: str, to: str, twiml: str, status_url: str) -> None:
        """What happens on the line, then the call's final status."""
        queued = self.calls.get(to)
        script = queued.pop(0) if queued else "answered"
        kind, _, detail = script.partition(":")
        form: dict[str, str] = {"CallSid": sid, "To": to}
        async with httpx.AsyncClient(timeout=10) as client:

            async def signed_post(url: str, data: dict[str, str]) -> httpx.Response:
                signature = twilio_signature(self.auth_token, url, data)
                return await client.post(url, data=data, headers={"X-Twilio-Signature": signature})

            if kind in ("answered", "pin", "machine"):
                self._said(sid, twiml)
            if kind == "pin":
                script_now = twiml
                for keys in detail.split(","):
                    action = _gather_action(script_now)
                    if action is None:
                        break
                    self.heard.append((sid, "pressed", keys))
                    answer = await signed_post(action, {"CallSid": sid, "Digits": keys})
                    script_now = answer.text
                    self._said(sid, script_now)
            if kind in ("answered", "pin"):
                form.update(CallStatus="completed", AnsweredBy="human")
            elif kind == "machine":
                form.update(CallStatus="completed", AnsweredBy="machine_start")
            elif kind == "failed":
                form.update(CallStatus="failed", ErrorCode=detail)
            else:
                form["CallStatus"] = kind
            answer = await signed_post(status_url, form)
            self.callbacks.append((sid, form["CallStatus"], answer.status_code))

    def _said(self, sid: str, twiml: str) -> None:
        try:
            root = ElementTree.fromstring(twiml.split("?>", 1)[-1])
        except ElementTree.ParseError:
            return
        says = list(root.iter("Say"))
        self.heard.append((sid, "said", " ".join((s.text or "") for s in says)))
        self.voices.extend(s.get("language", "") for s in says)

    def wait_for_callbacks(self, count: int, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while len(self.callbacks) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.callbacks) >= count, f"{len(self.callbacks)} receipts, not {count}"

    async def post_receipts(self, sid: str, to: str, url: str) -> None:
        """What the carrier made of a text: `sent`, then its outcome."""
        queued = self.outcomes.get(to)
        status, code = queued.pop(0) if queued else ("delivered", None)
        async with httpx.AsyncClient(timeout=10) as client:
            for step, error in (("sent", None), (status, code)):
                form = {"MessageSid": sid, "MessageStatus": step, "To": to}
                if error:
                    form["ErrorCode"] = error
                signature = twilio_signature(self.auth_token, url, form)
                answer = await client.post(
                    url, data=form, headers={"X-Twilio-Signature": signature}
                )
                self.callbacks.append((sid, step, answer.status_code))


def _provider_app(provider: Provider) -> FastAPI:
    app = FastAPI()

    @app.post("/2010-04-01/Accounts/{account}/{resource}.json")
    async def twilio(
        account: str, resource: str, request: Request, tasks: BackgroundTasks
    ) -> JSONResponse:
        form = {k: str(v) for k, v in (await request.form()).items()}
        provider.requests.append(
            {
                "kind": resource,
                "account": account,
                "form": form,
                "headers": dict(request.headers),
                "at": time.time(),
            }
        )
        if provider.fail_next > 0:
            provider.fail_next -= 1
            return JSONResponse({"message": "try later"}, status_code=503)
        if form.get("To") in provider.invalid_numbers:
            return JSONResponse({"code": 21211, "message": "invalid To number"}, status_code=400)
        # Unique across simulators, as real providers' ids are (failover runs two).
        sid = f"SM{provider.port}{len(provider.requests):06d}"
        if form.get("StatusCallback") and resource == "Messages" and not provider.silent:
            # After the answer, as a provider reports: the app records the send first.
            tasks.add_task(provider.post_receipts, sid, form["To"], form["StatusCallback"])
        if form.get("StatusCallback") and resource == "Calls":
            sid = f"CA{provider.port}{len(provider.requests):06d}"
            call = (sid, form["To"], form.get("Twiml", ""), form["StatusCallback"])
            if provider.ring_seconds or provider.answer_delay:
                # Placed whether or not the caller is still there for the answer.
                ringing = asyncio.create_task(provider.ring(*call))
                provider._ringing.add(ringing)
                ringing.add_done_callback(provider._ringing.discard)
            else:
                tasks.add_task(provider.answer_call, *call)
        if provider.answer_delay:
            await asyncio.sleep(provider.answer_delay)
        return JSONResponse({"sid": sid}, status_code=201)

    @app.post("/hook")
    async def hook(request: Request) -> Response:
        provider.requests.append(
            {
                "kind": "webhook",
                "body": await request.body(),
                "headers": dict(request.headers),
                "at": time.time(),
            }
        )
        if provider.hook_answer is not None:
            status, body, headers = provider.hook_answer
            return Response(body, status_code=status, headers=headers)
        return JSONResponse({"ok": True})

    return app


def _gather_action(twiml: str) -> str | None:
    """The URL a script's PIN prompt posts the keys to, if it asks for any."""
    try:
        root = ElementTree.fromstring(twiml.split("?>", 1)[-1])
    except ElementTree.ParseError:
        return None
    gather = root.find(".//Gather")
    return None if gather is None else gather.get("action")


@contextmanager
def provider_stub() -> Iterator[Provider]:
    port = free_port()
    provider = Provider(f"http://127.0.0.1:{port}")
    with background_server(_provider_app(provider), port=port):
        yield provider

"""The demo inbox page: the mail the demo's own SMTP server received and the texts and
calls its phone received, newest first; a call that asks for a PIN can be answered
there, and a text replied to. Only ever mounted in demo mode, and the demo
listens on 127.0.0.1 alone."""

from dataclasses import dataclass
from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from safevine.demo.mailbox import Mailbox
from safevine.demo.phone import Phone
from safevine.web.public.pages import language_of, page


@dataclass(frozen=True)
class Item:
    kind: str  # email, text or call
    received_at: datetime
    to: str
    subject: str
    text: str
    sid: str = ""
    ringing: bool = False  # a call waiting to be answered on this page
    ended: str | None = None  # how a call that asked for a PIN ended


def inbox_router(mailbox: Mailbox, phone: Phone) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/demo/inbox", response_class=HTMLResponse)
    def inbox(request: Request) -> Response:
        items = [Item("email", m.received_at, m.to, m.subject, m.text) for m in mailbox.letters()]
        items += [
            Item(r.kind, r.received_at, r.to, "", r.text, r.sid, r.ringing, r.ended)
            for r in phone.rings()
        ]
        items.sort(key=lambda item: item.received_at, reverse=True)
        return page(request, "demo_inbox.html", language_of(request), items=items)

    return router

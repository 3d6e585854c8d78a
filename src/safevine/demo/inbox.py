"""The demo inbox page: the mail the demo's own SMTP server received. Only ever mounted in
demo mode, and the demo listens on 127.0.0.1 alone."""

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from safevine.demo.mailbox import Mailbox
from safevine.web.public.pages import language_of, page


def inbox_router(mailbox: Mailbox) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/demo/inbox", response_class=HTMLResponse)
    def inbox(request: Request) -> Response:
        return page(request, "demo_inbox.html", language_of(request), letters=mailbox.letters())

    return router

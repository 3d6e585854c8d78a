"""Unhandled exceptions become the generic 500 inside the app, not in the server.

Starlette sends a catch-all handler's answer from its outermost layer, past the safety
headers and the request log, then re-raises to uvicorn, which logs the whole traceback
(a database error's text holds the statement's parameters: the A-number or the names that
were searched for) and drops the keep-alive connection. This middleware sits innermost:
the answer passes through the headers and the request log like any other, the failure is
logged by type and place only (`safevine.failures`), and the server never sees it.
"""

import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from safevine.failures import describe
from safevine.web.observability import REQUEST_ID, route_of

log = logging.getLogger("safevine.web")

Answer = Callable[[Request], Awaitable[Response]]


class ServerErrors:
    def __init__(self, app: ASGIApp, answer: Answer) -> None:
        self.app = app
        self.answer = answer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_watched)
        except Exception as error:
            log.error(
                "request failed",
                extra={
                    "request_id": scope.get(REQUEST_ID),
                    "route": route_of(scope),
                    "method": scope["method"],
                    **describe(error),
                },
            )
            # Once an answer has begun there is no other to give; the server closes the
            # connection on an unfinished response.
            if not started:
                response = await self.answer(Request(scope, receive))
                await response(scope, receive, send)

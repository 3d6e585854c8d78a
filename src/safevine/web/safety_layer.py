"""The one middleware around both apps: safety headers on every response, the request
count and log, and the generic 500 for an unhandled exception.

One pure ASGI layer, not three: each layer is a coroutine call and a wrapped `send` per
message, paid by every search.

Unhandled exceptions become the generic 500 here, not in the server. Starlette sends a
catch-all handler's answer from its outermost layer, past the safety headers and the
request log, then re-raises to uvicorn, which logs the whole traceback (a database
error's text holds the statement's parameters: the A-number or the names that were
searched for) and drops the keep-alive connection. Here the answer gets the headers and
is counted like any other, the failure is logged by type and place only
(`safevine.failures`), and the server never sees it.
"""

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from safevine.failures import describe
from safevine.web.observability import REQUEST_ID, Metrics, new_request_id, route_of
from safevine.web.security_headers import STATIC_PREFIX, RawHeaders, response_headers

log = logging.getLogger("safevine.web")

# The generic 500 of an app, in the reader's language.
Answer = Callable[[Request], Awaitable[Response]]
_BARE_500 = "Something went wrong on our side."
_SEARCHES = frozenset({("/api/v1/search", "POST"), ("/", "POST")})


class SafetyLayer:
    """`https`: the public base URL is https, so browsers are told never to use plain http
    here (a first visit over http could be read or rewritten on the way)."""

    def __init__(self, app: ASGIApp, metrics: Metrics, answer: Answer, https: bool) -> None:
        self.app = app
        self.metrics = metrics
        self.answer = answer
        self._static, self._dynamic, self._ours = response_headers(https)
        # The counter's child for each (route, method, status), as `labels()` would find
        # it again on every request, at a dictionary lookup's cost.
        self._counted: dict[tuple[str, str, int], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_request_id()
        scope[REQUEST_ID] = request_id
        started = time.perf_counter()
        ours: RawHeaders = (
            self._static if scope["path"].startswith(STATIC_PREFIX) else self._dynamic
        )
        replaced = self._ours
        # The status of the answer begun; a request that raises before answering and whose
        # 500 cannot be sent either counts as a 500.
        status = 0

        async def send_guarded(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # Any header the app set under one of our names is replaced by ours.
                kept = [h for h in message.get("headers", ()) if h[0].lower() not in replaced]
                message["headers"] = kept + ours
            await send(message)

        try:
            await self.app(scope, receive, send_guarded)
        except Exception as error:
            log.error(
                "request failed",
                extra={
                    "request_id": request_id,
                    "route": route_of(scope),
                    "method": scope["method"],
                    **describe(error),
                },
            )
            # Once an answer has begun there is no other to give; the server closes the
            # connection on an unfinished response.
            if not status:
                await self._answer_failure(scope, receive, send_guarded, request_id)
        finally:
            self._observe(scope, request_id, status or 500, time.perf_counter() - started)

    async def _answer_failure(
        self, scope: Scope, receive: Receive, send: Send, request_id: str
    ) -> None:
        """The app's generic 500; should that fail too (a page that cannot be rendered),
        a bare one, so that neither failure reaches the server, which would log its text."""
        try:
            response = await self.answer(Request(scope, receive))
        except Exception as error:
            log.error(
                "answer to a failure failed",
                extra={"request_id": request_id, "route": route_of(scope), **describe(error)},
            )
            response = Response(_BARE_500, status_code=500, media_type="text/plain")
        await response(scope, receive, send)

    def _observe(self, scope: Scope, request_id: str, status: int, elapsed: float) -> None:
        route = route_of(scope)
        method = scope["method"]
        key = (route, method, status)
        counter = self._counted.get(key)
        if counter is None:
            counter = self._counted[key] = self.metrics.requests.labels(route, method, str(status))
        counter.inc()
        if (route, method) in _SEARCHES:
            self.metrics.search_seconds.observe(elapsed)
        if log.isEnabledFor(logging.INFO):
            # The request id goes to the log only: a header that differs per response
            # would tell two otherwise identical answers apart.
            log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "route": route,
                    "method": method,
                    "status": status,
                    "ms": round(elapsed * 1000, 1),
                },
            )

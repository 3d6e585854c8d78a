"""The common `POST /api/v1/search` answered straight from the ASGI messages.

The route (`api.search`) reads the body, decodes it with `json.loads` when it comes as
`application/json`, validates it as a `SearchRequest` and calls `api.answer`. For a body
that decodes and validates, this middleware takes the very same steps itself (an object
the model would take as it is, it takes without building the model), which
skips the router, FastAPI's dependency solver and the layers around the endpoint: on
SQLite about half of what a search cost the process (350 µs of CPU, then 150-180 µs,
in-process). Everything else (another content type, a body that does not decode or
validate, a client that went away, a mounted app, a size limit) goes to the route with
the messages received so far replayed, so that every error is FastAPI's own, word for
word. It sits inside the safety layer (headers, request log, 500 answer), so an answer
from here passes through it like any other.
"""

import json
import re
from collections.abc import Mapping
from typing import Any

import msgspec
from starlette.datastructures import QueryParams
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from safevine.web.public.api import FIELD_MAX, PATH, SearchRequest, answer, router
from safevine.web.state import AppState

# Starlette's scope key for a body size limit (newer versions only); none is set here, and
# with one the route must count the bytes.
_BODY_LIMIT = "starlette.max_body_size"
_JSON = "application/json"
_FIELDS = tuple(SearchRequest.model_fields)
_FIELD_SET = frozenset(_FIELDS)
# Pydantic refuses a text that is no Unicode string (a lone surrogate, which JSON's \u
# escapes can spell); every other text of at most FIELD_MAX characters it takes as it is.
_SURROGATE = re.compile("[\ud800-\udfff]")
# JSON decoded in C, about a quarter of `json.loads`'s time on a search's body. A body it
# decodes into one the model takes as it is, `json.loads` decodes into the same object
# (tests/web/test_search_fast_path.py holds the two equal); anything else, including all
# it refuses, goes the way `json.loads` and the model judge it.
_decode = msgspec.json.Decoder().decode


def _route() -> BaseRoute:
    for route in router.routes:
        if getattr(route, "path", None) == PATH and "POST" in getattr(route, "methods", ()):
            return route
    raise LookupError(f"no POST {PATH} route")


class SearchFastPath:
    """Pure ASGI middleware; `state` is the app's, as the route gets it from the request."""

    def __init__(self, app: ASGIApp, state: AppState) -> None:
        self.app = app
        self.state = state
        self.route = _route()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not takes(scope):
            await self.app(scope, receive, send)
            return
        received: list[Message] = []
        chunks: list[bytes] = []
        while True:
            message = await receive()
            received.append(message)
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        complete = received[-1]["type"] == "http.request"
        raw = _search_request(b"".join(chunks)) if complete else None
        if raw is None:
            await self.app(scope, _replay(received, receive), send)
            return
        # What the router records for the matched route (the request log labels by it).
        scope["route"] = self.route
        scope["endpoint"] = getattr(self.route, "endpoint", None)
        scope["path_params"] = {}
        query = scope.get("query_string", b"")
        response = await answer(
            self.state,
            self.state.clients.of(scope),
            QueryParams(query).get("lang") if query else None,
            _header(scope, b"accept-language"),
            raw,
        )
        await response(scope, receive, send)


def takes(scope: Scope) -> bool:
    """A request this layer may answer itself, if its body turns out to be one."""
    return (
        scope["type"] == "http"
        and scope["path"] == PATH
        and scope["method"] == "POST"
        and not scope.get("root_path")
        and _BODY_LIMIT not in scope
        and _header(scope, b"content-type") == _JSON
    )


def _header(scope: Scope, name: bytes) -> str | None:
    """The first value of a header, as `request.headers.get` gives it."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _search_request(body: bytes) -> Mapping[str, object] | None:
    """`SearchRequest.model_dump()` of the body, as the route would have it; None where
    the route would answer otherwise (the route then says how)."""
    if not body:
        return None
    try:
        given = _as_given(_decode(body))
    except Exception:  # its refusals, and RecursionError for a deep nesting
        given = None
    if given is not None:
        return given
    try:
        decoded: Any = json.loads(body)
        given = _as_given(decoded)
        return given if given is not None else SearchRequest.model_validate(decoded).model_dump()
    except Exception:
        return None


def _as_given(decoded: Any) -> dict[str, object] | None:
    """`model_dump()` for an object the model takes as it is (known fields, each a text
    within bounds or null), without building the model: that was most of what decoding a
    search cost. None for anything else, which the model then judges."""
    if type(decoded) is not dict or not decoded.keys() <= _FIELD_SET:
        return None
    for value in decoded.values():
        if value is None:
            continue
        if type(value) is not str or len(value) > FIELD_MAX:
            return None
        if not value.isascii() and _SURROGATE.search(value):
            return None
    return {name: decoded.get(name) for name in _FIELDS}


def _replay(received: list[Message], receive: Receive) -> Receive:
    pending = list(received)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay

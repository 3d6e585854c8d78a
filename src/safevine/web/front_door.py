"""A FastAPI app that hands the requests one of its own layers claims straight to it.

Above an app's own middleware Starlette and FastAPI put five layers: FastAPI's call and
Starlette's, the server-error layer, FastAPI's exception telemetry and its body limit.
Each is a coroutine call on every request, and the server-error layer wraps `send` for
every message: together about a tenth of the public web process's CPU on a search
(BENCHMARKS.md, search, fifteenth session). For a request the search fast path takes,
each is a pass-through. The safety layer below them answers every exception itself, so
none reaches the server-error layer or the telemetry. Telemetry is off. No body limit is
set, and the fast path declines a request that carries one.

So such a request goes straight to the layer of the given type. That happens only while
every layer above it is one of those pass-throughs, configured as such. Another layer, a
body limit, debug mode, a root path or FastAPI's telemetry switched on, and every request
takes the whole way, as a plain FastAPI app does.
"""

import importlib
from collections.abc import Callable

from fastapi import FastAPI
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

Claims = Callable[[Scope], bool]


def _fastapi_layer(module: str, name: str) -> type | None:
    """One of FastAPI's own layers, from its private modules: a release that moves or
    renames it leaves the walk below without it, and every request takes the whole way."""
    try:
        found = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None
    return found if isinstance(found, type) else None


# Without a limit FastAPI's body-limit layer hands on the very app it was given; with
# one, a limiting layer sits below it, and the walk stops there.
_HANDS_ON = tuple(
    kind
    for kind in (
        _fastapi_layer("fastapi.telemetry._asgi", "ExceptionTelemetryMiddleware"),
        _fastapi_layer("fastapi._body_limit", "AppBodyLimitMiddleware"),
    )
    if kind is not None
)


class FrontDoorApp(FastAPI):
    """`take_straight(claims, layer)` before the first request: from then on, a request
    `claims` accepts goes to the app's middleware of type `layer`."""

    _claims: Claims | None = None
    _layer: type | None = None
    # Set when the middleware stack is built: the layer's instance, or None.
    _straight: ASGIApp | None = None

    def take_straight(self, claims: Claims, layer: type) -> None:
        if self.middleware_stack is not None:
            raise RuntimeError("take_straight must be called before the app has started")
        self._claims, self._layer = claims, layer

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        self._straight = None
        if self._claims is not None and self._layer is not None and self._passes_through():
            self._straight = _below_pass_throughs(stack, self._layer)
        return stack

    def _passes_through(self) -> bool:
        """FastAPI's own call does nothing but hand on the request: no root path to set,
        no telemetry to record (a release without its own telemetry records none)."""
        telemetry = getattr(self, "_native_telemetry", None)
        return not self.root_path and (telemetry is None or not telemetry.enabled())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        straight = self._straight
        # The root path is checked again here: it may be set after the stack was built.
        if (
            straight is not None
            and not self.root_path
            and self._claims is not None
            and self._claims(scope)
        ):
            scope["app"] = self  # as Starlette's call sets it, for `request.app`
            await straight(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def _below_pass_throughs(stack: ASGIApp, layer: type) -> ASGIApp | None:
    """The first middleware of type `layer` in `stack`, if every layer above it is one
    that hands a request on unchanged; otherwise None."""
    current: ASGIApp | None = stack
    while current is not None:
        if isinstance(current, layer):
            return current
        if not _passes_request_on(current):
            return None
        current = getattr(current, "app", None)
    return None


def _passes_request_on(layer: object) -> bool:
    if type(layer) is ServerErrorMiddleware:
        # Its debug page would show a traceback; off, it only answers an exception, and
        # the layer claimed answers every one itself.
        return not layer.debug
    return type(layer) in _HANDS_ON

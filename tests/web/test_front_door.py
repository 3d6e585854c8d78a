"""A search the fast path may answer goes straight to the safety layer, past Starlette's
outer layers; anything that makes one of those layers do more than hand the request on
sends every request the whole way again. What the answers are is held equal to the
route's by tests/web/test_search_fast_path.py, through the same app."""

import json
from collections.abc import Callable, Iterator

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from safevine.web.public.api import PATH
from safevine.web.public_app import create_public_app
from safevine.web.safety_layer import SafetyLayer
from safevine.web.security_headers import CONTENT_SECURITY_POLICY
from tests.canaries import PUBLIC, plant
from tests.web.conftest import settings_for
from tests.web.test_search_fast_path import _call, _call_scope, _with

SEARCH = json.dumps(PUBLIC.by_a_number()).encode()


@pytest.fixture
def outer_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of the requests that passed through Starlette's server-error layer."""
    calls: list[str] = []
    real = ServerErrorMiddleware.__call__

    async def counted(
        self: ServerErrorMiddleware, scope: Scope, receive: Receive, send: Send
    ) -> None:
        if scope["type"] == "http":
            calls.append(scope["path"])
        await real(self, scope, receive, send)

    monkeypatch.setattr(ServerErrorMiddleware, "__call__", counted)
    return calls


@pytest.fixture
def make_app(sqlite_engine: Engine) -> Iterator[Callable[..., FastAPI]]:
    plant(sqlite_engine)
    made: list[FastAPI] = []

    def make(**options: bool) -> FastAPI:
        app = create_public_app(settings_for(sqlite_engine), **options)
        made.append(app)
        return app

    yield make
    for app in made:
        app.state.safevine.public_engine.dispose()


def _found(answer: tuple[int, list[tuple[bytes, bytes]], bytes]) -> list[object]:
    status, headers, body = answer
    assert status == 200
    assert (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()) in headers
    return list(json.loads(body)["results"])


def test_a_search_skips_the_outer_layers_and_nothing_else_does(
    make_app: Callable[..., FastAPI], outer_calls: list[str]
) -> None:
    app = make_app()
    # The first request builds the stack; from then on a search goes straight.
    assert _found(_call(app, [SEARCH]))
    outer_calls.clear()
    assert _found(_call(app, [SEARCH]))
    assert _call(app, [b"{"])[0] == 422  # declined by the fast path: the route answers
    assert outer_calls == []
    assert isinstance(app._straight, SafetyLayer)  # type: ignore[attr-defined]

    # Another path, method, content type or a mounted app: the whole way.
    _call_scope(app, _with("/"), b"")
    _call_scope(app, _with(PATH + "/"), SEARCH)
    assert _call(app, [SEARCH], content_type=b"text/plain")[0] == 422
    assert outer_calls == ["/", PATH + "/", PATH]


def test_without_the_fast_path_every_search_takes_the_whole_way(
    make_app: Callable[..., FastAPI], outer_calls: list[str]
) -> None:
    app = make_app(search_fast_path=False)
    for _ in range(2):
        assert _found(_call(app, [SEARCH]))
    assert outer_calls == [PATH, PATH]
    assert app._straight is None  # type: ignore[attr-defined]


class _Outermost:
    """A layer added after the safety layer: it sits above it, and sees every request."""

    def __init__(self, app: ASGIApp, seen: list[str]) -> None:
        self.app = app
        self.seen = seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.seen.append(scope["path"])
        await self.app(scope, receive, send)


def _with_layer_above(app: FastAPI, seen: list[str]) -> None:
    app.add_middleware(_Outermost, seen=seen)


@pytest.mark.parametrize(
    ("change", "above"),
    [
        pytest.param(lambda app, seen: setattr(app, "max_body_size", 1 << 20), [], id="body limit"),
        pytest.param(lambda app, seen: setattr(app, "debug", True), [], id="debug"),
        pytest.param(_with_layer_above, [PATH, PATH], id="a layer above"),
    ],
)
def test_a_layer_that_does_more_sends_every_search_the_whole_way(
    make_app: Callable[..., FastAPI],
    outer_calls: list[str],
    change: Callable[[FastAPI, list[str]], None],
    above: list[str],
) -> None:
    app = make_app()
    seen: list[str] = []
    change(app, seen)
    for _ in range(2):
        assert _found(_call(app, [SEARCH]))
    assert outer_calls == [PATH, PATH]
    assert app._straight is None  # type: ignore[attr-defined]
    assert seen == above


def test_a_body_over_the_apps_limit_is_refused_as_by_fastapi(
    make_app: Callable[..., FastAPI],
) -> None:
    """With a limit set the search is measured by FastAPI's own layer, as with no fast
    path at all."""
    fast, slow = make_app(), make_app(search_fast_path=False)
    big = json.dumps({**PUBLIC.by_a_number(), "given_name": "x" * 300}).encode()
    for app in (fast, slow):
        app.max_body_size = 256  # type: ignore[attr-defined]
        assert _found(_call(app, [SEARCH]))  # under the limit; and the stack is built
    refused = _call(fast, [big])
    assert refused == _call(slow, [big])
    assert refused[0] == 413


def test_a_root_path_sends_every_search_the_whole_way(
    make_app: Callable[..., FastAPI], outer_calls: list[str]
) -> None:
    app = make_app()
    app.root_path = "/safevine"
    _call(app, [SEARCH])
    _call(app, [SEARCH])
    assert outer_calls == [PATH, PATH]
    assert app._straight is None  # type: ignore[attr-defined]


def test_a_root_path_set_after_the_start_sends_every_search_the_whole_way(
    make_app: Callable[..., FastAPI], outer_calls: list[str]
) -> None:
    app = make_app()
    _call(app, [SEARCH])
    app.root_path = "/safevine"
    outer_calls.clear()
    _call(app, [SEARCH])
    assert outer_calls == [PATH]


def test_taking_straight_after_the_start_is_refused(make_app: Callable[..., FastAPI]) -> None:
    app = make_app()
    _call(app, [SEARCH])
    with pytest.raises(RuntimeError, match="before the app has started"):
        app.take_straight(lambda scope: True, SafetyLayer)  # type: ignore[attr-defined]

"""The safety layer around both apps, over real HTTP: its headers replace the app's own,
each request is counted and logged once by route and status, and a failure is answered
with the generic 500 before an answer began, and never a second time after."""

import logging
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

from safevine.web.app_shell import guard, new_app
from safevine.web.observability import Metrics
from safevine.web.security_headers import CONTENT_SECURITY_POLICY
from safevine.web.server import background_server

SECRET = "A123456789"
GENERIC = "generic failure"


def _app(metrics: Metrics) -> FastAPI:
    app = new_app("safety layer test")

    @app.get("/fine")
    async def fine() -> Response:
        # Headers under the layer's names, which it must replace.
        return JSONResponse(
            {"ok": True},
            headers={"Cache-Control": "public, max-age=999", "X-Frame-Options": "SAMEORIGIN"},
        )

    @app.get("/fails")
    async def fails() -> Response:
        raise RuntimeError(f"lookup of {SECRET} failed")

    @app.get("/fails-midway")
    async def fails_midway() -> Response:
        def body() -> Iterator[bytes]:
            yield b"first part"
            raise RuntimeError(f"lookup of {SECRET} failed")

        return StreamingResponse(body())

    @app.get("/answer-fails")
    async def answer_fails() -> Response:
        raise RuntimeError(f"lookup of {SECRET} failed")

    async def answer(request: Request) -> Response:
        if request.url.path == "/answer-fails":
            raise RuntimeError("the generic answer failed as well")
        return PlainTextResponse(GENERIC, status_code=500)

    guard(app, metrics, answer, https=True)
    return app


def _count(metrics: Metrics, route: str, status: int) -> float:
    labels = {"route": route, "method": "GET", "status": str(status)}
    return metrics.registry.get_sample_value("safevine_http_requests_total", labels) or 0.0


def test_the_safety_layer(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="safevine.web")
    metrics = Metrics()
    with background_server(_app(metrics)) as base, httpx.Client(base_url=base) as client:
        fine = client.get("/fine")
        failed = client.get("/fails")
        with pytest.raises(httpx.RemoteProtocolError):
            client.get("/fails-midway")  # the server closes the unfinished answer
        answer_failed = client.get("/answer-fails")
        unknown = client.get("/nowhere")

    assert fine.status_code == 200 and fine.json() == {"ok": True}
    for answered in (fine, failed, answer_failed, unknown):
        assert answered.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert answered.headers["cache-control"] == "no-store"
        assert answered.headers.get_list("x-frame-options") == ["DENY"]
        assert answered.headers["strict-transport-security"].startswith("max-age=63072000")
    assert failed.status_code == 500 and failed.text == GENERIC
    # A bare 500 of the layer's own when the app's generic answer fails too.
    assert answer_failed.status_code == 500
    assert answer_failed.text == "Something went wrong on our side."
    assert unknown.status_code == 404

    # Counted once each, by route template and the status answered (a failure after the
    # answer began keeps its status; one with no answer at all is a 500).
    assert _count(metrics, "/fine", 200) == 1
    assert _count(metrics, "/fails", 500) == 1
    assert _count(metrics, "/fails-midway", 200) == 1
    assert _count(metrics, "/fails-midway", 500) == 0
    assert _count(metrics, "/answer-fails", 500) == 1
    assert _count(metrics, "unmatched", 404) == 1

    failures = [r for r in caplog.records if r.getMessage() == "request failed"]
    assert [r.route for r in failures] == ["/fails", "/fails-midway", "/answer-fails"]  # type: ignore[attr-defined]
    assert all(r.error == "RuntimeError" for r in failures)  # type: ignore[attr-defined]
    unanswered = [r for r in caplog.records if r.getMessage() == "answer to a failure failed"]
    assert [r.route for r in unanswered] == ["/answer-fails"]  # type: ignore[attr-defined]
    logged = [r for r in caplog.records if r.getMessage() == "request"]
    assert [(r.route, r.status) for r in logged] == [  # type: ignore[attr-defined]
        ("/fine", 200),
        ("/fails", 500),
        ("/fails-midway", 200),
        ("/answer-fails", 500),
        ("unmatched", 404),
    ]
    # A failure and its request share an id, and no two requests do.
    ids = [r.request_id for r in logged]  # type: ignore[attr-defined]
    assert len(set(ids)) == len(ids)
    assert {r.request_id for r in failures + unanswered} <= set(ids)  # type: ignore[attr-defined]
    # What the failures said is nowhere in a log (the server's included): only their types
    # and places.
    assert SECRET not in caplog.text
    assert "Exception in ASGI application" not in caplog.text
    assert all(SECRET not in str(r.__dict__) for r in caplog.records)

"""Search terms never reach the logs, at any level, including the access log."""

import logging

import httpx
import pytest
from sqlalchemy import Engine

from safevine.web.public_app import create_public_app
from safevine.web.server import background_server
from tests.canaries import NEVER_EXISTED, NON_PUBLIC, PUBLIC, plant
from tests.web.conftest import settings_for


def test_no_identifier_is_logged(engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    plant(engine)
    caplog.set_level(logging.DEBUG)
    app = create_public_app(settings_for(engine))
    with background_server(app, access_log=True) as base, httpx.Client(base_url=base) as client:
        client.get("/")
        token = client.cookies.get("sv_csrf") or ""
        for canary in [PUBLIC, NEVER_EXISTED, *NON_PUBLIC]:
            for body in (canary.by_a_number(), canary.by_name()):
                client.post("/api/v1/search", json=body)
                client.post("/", data={**body, "csrf_token": token})
        client.post("/api/v1/search", json={"a_number": "bad-300000002"})
    app.state.safevine.public_engine.dispose()
    logged = caplog.text
    assert "POST /api/v1/search" in logged  # the access log really was on
    for canary in [PUBLIC, NEVER_EXISTED, *NON_PUBLIC]:
        for identifier in canary.identifiers:
            assert identifier not in logged

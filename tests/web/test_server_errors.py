"""When the database fails under a search, the answer is generic, keeps the safety
headers, and neither it nor any log line carries what was searched for."""

import logging

import httpx
import pytest
from sqlalchemy import Engine

from safevine.logs import JsonLines
from safevine.web.public_app import create_public_app
from safevine.web.security_headers import CONTENT_SECURITY_POLICY
from safevine.web.server import background_server
from tests.canaries import NEVER_EXISTED, NON_PUBLIC, PUBLIC, plant
from tests.public_schema import drop_public_reads
from tests.web.conftest import settings_for

GENERIC = "Something went wrong on our side. Nothing you entered was kept."


def test_a_failing_search_leaks_nothing(engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    plant(engine)
    caplog.set_level(logging.DEBUG)
    app = create_public_app(settings_for(engine))
    answers: list[httpx.Response] = []
    with background_server(app, access_log=True) as base, httpx.Client(base_url=base) as client:
        client.get("/")
        token = client.cookies.get("sv_csrf") or ""
        # A schema the public role can no longer read: every lookup fails in the database,
        # with the search terms as the statement's parameters.
        with engine.begin() as connection:
            drop_public_reads(connection)
        for canary in [PUBLIC, NEVER_EXISTED, *NON_PUBLIC]:
            for body in (canary.by_a_number(), canary.by_name()):
                answers.append(client.post("/api/v1/search", json=body))
                answers.append(client.post("/", data={**body, "csrf_token": token}))
    app.state.safevine.public_engine.dispose()

    failures = [record for record in caplog.records if record.getMessage() == "request failed"]
    assert len(failures) == len(answers)  # each failure was logged, by type and place
    assert all(record.error.startswith("sqlalchemy.exc.") for record in failures)  # type: ignore[attr-defined]
    assert "Exception in ASGI application" not in caplog.text  # nothing reached uvicorn
    for answer in answers:
        assert answer.status_code == 500
        assert GENERIC in answer.text
        assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert answer.headers["referrer-policy"] == "no-referrer"
        assert answer.headers["cache-control"] == "no-store"
    formatted = "\n".join(JsonLines().format(record) for record in caplog.records)
    seen = (caplog.text + formatted + "".join(answer.text for answer in answers)).casefold()
    for canary in [PUBLIC, NEVER_EXISTED, *NON_PUBLIC]:
        for identifier in canary.identifiers:
            assert identifier.casefold() not in seen

"""schemathesis against our own OpenAPI schemas, on the running public and staff services
and on both databases, with a staff token holding every scope on the staff service: no
input makes either server fail, and every 405 says which methods are allowed."""

from datetime import UTC, datetime

import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from sqlalchemy import Engine

from safevine.store.records import staff_tokens
from safevine.web.public_app import create_public_app
from safevine.web.server import background_server
from safevine.web.staff_app import create_staff_app
from tests.canaries import plant
from tests.web.conftest import settings_for

SCOPES = ["ingest", "protect", "read", "report", "admin", "correct"]


# The feeds' bodies are text in their own formats; schemathesis sends generated strings.
@schemathesis.serializer("text/csv", "application/x-ndjson")
def _text(ctx: object, value: object) -> bytes:
    return value.encode("utf-8", "surrogatepass") if isinstance(value, str) else b""


def test_no_input_causes_a_server_error(engine: Engine) -> None:
    plant(engine)
    with engine.begin() as connection:
        token = staff_tokens.create(connection, "schemathesis", SCOPES, datetime.now(UTC))
    headers = {"Authorization": f"Bearer {token}"}
    settings = settings_for(engine, rate_limits_enabled=True, rate_limit_client="100000/minute")
    public, staff = create_public_app(settings), create_staff_app(settings)
    statuses: dict[str, set[int]] = {}
    try:
        checked = _fuzz(public, None, statuses) + _fuzz(staff, headers, statuses)
    finally:
        public.state.safevine.public_engine.dispose()
        staff.state.staff.records_engine.dispose()
    assert "POST /api/v1/search" in checked
    assert "POST /api/v1/staff/persons/protect" in checked
    assert "POST /api/v1/staff/events/retract" in checked
    # Generated feed bodies were read as feeds: some applied, some refused as unreadable.
    for feed in ("events", "roster", "protections", "facilities"):
        assert {200, 422} <= statuses[f"POST /api/v1/staff/feeds/{feed}"], statuses


def _fuzz(app: FastAPI, headers: dict[str, str] | None, statuses: dict[str, set[int]]) -> list[str]:
    """Every operation of the app's schema, fuzzed; `headers` only for the staff app."""
    checked = []
    with background_server(app) as base:
        schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
        for result in schema.get_all_operations():
            operation = result.ok()

            @given(case=operation.as_strategy())
            @settings(
                max_examples=100,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            def no_server_error(case: schemathesis.Case) -> None:
                _check(case, base, headers, statuses)

            no_server_error()
            checked.append(operation.label)
    return checked


def _check(
    case: schemathesis.Case,
    base: str,
    headers: dict[str, str] | None,
    statuses: dict[str, set[int]],
) -> None:
    staff = headers is not None
    response = case.call(base_url=base, headers=headers)
    statuses.setdefault(case.operation.label, set()).add(response.status_code)
    assert response.status_code < 500, (case.method, case.path, response.text)
    if response.status_code == 405:
        assert response.headers.get("allow"), (case.method, case.path)
    if staff:
        # The token really opened the door: the input itself was judged.
        assert response.status_code not in (401, 403), (case.path, response.text)

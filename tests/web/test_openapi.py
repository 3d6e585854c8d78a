"""schemathesis against our own OpenAPI schema: no input makes the server fail."""

import schemathesis
from hypothesis import HealthCheck, given, settings
from sqlalchemy import Engine

from safevine.web.app import create_app
from safevine.web.server import background_server
from tests.canaries import plant
from tests.web.conftest import settings_for


def test_no_input_causes_a_server_error(sqlite_engine: Engine) -> None:
    plant(sqlite_engine)
    app = create_app(
        settings_for(sqlite_engine, rate_limits_enabled=True, rate_limit_client="10000/minute")
    )
    checked = []
    with background_server(app) as base:
        schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
        for result in schema.get_all_operations():
            operation = result.ok()

            @given(case=operation.as_strategy())
            @settings(
                max_examples=200,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def no_server_error(case: schemathesis.Case) -> None:
                response = case.call(base_url=base)
                assert response.status_code < 500, response.text

            no_server_error()
            checked.append(operation.label)
    app.state.safevine.public_engine.dispose()
    assert "POST /api/v1/search" in checked

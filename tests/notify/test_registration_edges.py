"""Hostile input to the registration flows gets a field problem, never a server error, on
both databases (PostgreSQL refuses a NUL at the driver)."""

import json

import httpx
import pytest
from sqlalchemy import func, select

from safevine.store.public.tables import registrations
from safevine.web.public_app import create_public_app
from safevine.web.server import background_server
from tests.canaries import PUBLIC
from tests.notify.conftest import Delivery
from tests.notify.test_registration_api import api, body  # noqa: F401 - the fixture

QUIET = {"start": "21:00", "end": "07:00"}
CASES = [
    ({"address": "a\x00b@example.org"}, "address"),
    ({"address": "\x00@example.org"}, "address"),
    ({"address": "a\x1b[2J@example.org"}, "address"),
    ({"address": "\ud800@example.org"}, "address"),
    ({"channel": "sms", "address": "+1555\x000100100"}, "address"),
    ({"channel": "webhook", "address": "https://example.org/\x00"}, "address"),
    ({"address": "a" * 1_000_000}, "address"),
    ({"person": "\x00" * 20}, "person"),
    ({"language": "e\x00"}, "language"),
    ({"quiet_hours": {**QUIET, "time_zone": "America"}}, "quiet_hours"),
    ({"quiet_hours": {**QUIET, "time_zone": "Etc"}}, "quiet_hours"),
    ({"quiet_hours": {**QUIET, "time_zone": "../../etc/passwd"}}, "quiet_hours"),
    ({"quiet_hours": {**QUIET, "time_zone": "/usr/share/zoneinfo/UTC"}}, "quiet_hours"),
    ({"quiet_hours": {**QUIET, "time_zone": "America/New\x00York"}}, "quiet_hours"),
    ({"quiet_hours": {"start": "24:00", "end": "07:00"}}, "quiet_hours"),
    ({"quiet_hours": {"start": "99:99", "end": "07:00"}}, "quiet_hours"),
    ({"quiet_hours": {"start": "9" * 5000, "end": "07:00"}}, "quiet_hours"),
]


@pytest.mark.parametrize(("changes", "field"), CASES)
def test_hostile_registrations_get_a_field_problem(
    delivery: Delivery,
    api: httpx.Client,  # noqa: F811
    changes: dict[str, object],
    field: str,
) -> None:
    sent = json.dumps(body(delivery, **changes)).encode()
    answer = api.post(
        "/api/v1/registrations", content=sent, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 422, answer.text
    fields = {error["field"].split(".")[0] for error in answer.json()["errors"]}
    assert fields == {field}, answer.text
    with delivery.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(registrations)).scalar() == 0


def test_the_pages_answer_a_nul_with_the_address_problem(delivery: Delivery) -> None:
    app = create_public_app(delivery.settings)
    with background_server(app) as base, httpx.Client(base_url=base) as client:
        client.get("/")
        form = {
            "person": delivery.ref(PUBLIC.a_number),
            "channel": "email",
            "address": "a\x00b@example.org",
            "language": "en",
            "time_zone": "America",
            "quiet_start": "21:00",
            "quiet_end": "07:00",
            "csrf_token": client.cookies.get("sv_csrf") or "",
        }
        answer = client.post("/register/start", data=form)
    app.state.safevine.public_engine.dispose()
    assert answer.status_code in (200, 422), answer.status_code
    assert "Enter an email address" in answer.text and "quiet hours" in answer.text.lower()

"""A crowd (the same identifiers searched from many addresses) is slowed and told to the
staff once, never refused; the alert names no identifier, and its link leads staff to
the person."""

import logging
import re
import time

import httpx
import pytest
from sqlalchemy import Engine, select

from safevine.store.public.tables import operations_messages
from safevine.store.schema import persons
from safevine.web.public_app import create_public_app
from safevine.web.server import background_server
from tests.canaries import NEVER_EXISTED, NON_PUBLIC, PROTECTED, PUBLIC, UNSCREENED, Canary
from tests.staff.desk import Desk, desk  # noqa: F401
from tests.web.conftest import settings_for

DELAY = 1


def _crowd_app(engine: Engine) -> object:
    return create_public_app(
        settings_for(
            engine,
            rate_limits_enabled=True,
            rate_limit_client="100/minute",
            rate_limit_identifier="10/hour",
            search_crowd="2/hour",
            search_crowd_delay=DELAY,
            trusted_proxies=("127.0.0.1/32",),
            operations_email="operations@agency.test",
        )
    )


def _timed(client: httpx.Client, body: dict[str, str], address: str) -> tuple[int, float]:
    started = time.monotonic()
    status = client.post(
        "/api/v1/search", json=body, headers={"X-Forwarded-For": address}
    ).status_code
    return status, time.monotonic() - started


def _alerts(engine: Engine) -> list[dict[str, object]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(operations_messages).where(operations_messages.c.kind == "search_crowd")
        ).all()
    return [dict(row._mapping) for row in rows]


def _public_ref(engine: Engine, canary: Canary) -> str:
    with engine.connect() as connection:
        return str(
            connection.execute(
                select(persons.c.public_ref).where(persons.c.a_number == canary.a_number)
            ).scalar_one()
        )


def test_a_crowd_is_slowed_for_everyone_and_the_staff_are_told_once(
    desk: Desk,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = desk.engine
    caplog.set_level(logging.DEBUG)
    app = _crowd_app(engine)
    with background_server(app) as base, httpx.Client(base_url=base, timeout=30) as client:  # type: ignore[arg-type]
        for canary in (PUBLIC, PROTECTED, UNSCREENED, NEVER_EXISTED):
            body = canary.by_a_number()
            # One client searching again and again is no crowd.
            again = [_timed(client, body, "203.0.113.1") for _ in range(3)]
            assert all(status == 200 and took < DELAY for status, took in again), again
            second = _timed(client, body, "203.0.113.2")
            assert second[0] == 200 and second[1] < DELAY
            # A third address makes a crowd: every answer waits, nobody is refused, and a
            # person who exists, one who is hidden and one who never existed are alike.
            for address in ("203.0.113.3", "203.0.113.4", "203.0.113.1"):
                status, took = _timed(client, body, address)
                assert status == 200 and took >= DELAY, (canary.kind, address, took)
        # Other identifiers are not slowed by this crowd.
        assert _timed(client, PUBLIC.by_name(), "203.0.113.9")[1] < DELAY
    app.state.safevine.public_engine.dispose()  # type: ignore[attr-defined]

    alerts = _alerts(engine)
    assert len(alerts) == 4  # one per identifiers, however many searched after
    public_ref = _public_ref(engine, PUBLIC)
    [named] = [a for a in alerts if a["payload"]["public_refs"]]  # type: ignore[index]
    assert named["payload"]["public_refs"] == [public_ref]  # type: ignore[index]
    assert named["channel"] == "email" and named["state"] == "queued"
    for alert in alerts:
        if alert is not named:
            assert "They match no public record" in str(alert["body"])
        assert "waits 1 seconds" in str(alert["body"])
    keys = {a["payload"]["identifiers_key"] for a in alerts}  # type: ignore[index]
    assert len(keys) == 4
    # The alert and the logs hold no identifier of anyone searched.
    told = str(alerts) + caplog.text
    assert "search crowd" in caplog.text
    for canary in (PUBLIC, NEVER_EXISTED, *NON_PUBLIC):
        for identifier in canary.identifiers:
            assert identifier not in told, (canary.kind, identifier)

    # The alert's link leads a signed-in screener to the person; nobody else gets there.
    [link] = re.findall(r"http://[^\s]+/person/ref/[^\s]+", str(named["body"]))
    path = link.split("8001", 1)[1]
    sam, _ = desk.sign_in("sam")
    opened = sam.get(path)
    assert opened.status_code == 303
    person = sam.get(opened.headers["location"])
    assert person.status_code == 200 and PUBLIC.family in person.text
    assert sam.get("/person/ref/not-a-reference").status_code == 404
    with desk.client() as stranger:
        assert stranger.get(path).status_code in (303, 401)
        assert PUBLIC.family not in stranger.get(path, follow_redirects=True).text

"""Rate limits per client and per identifier: 429 with Retry-After, in memory or in Redis."""

import os
import uuid

import httpx
import pytest
import redis
from sqlalchemy import Engine

from safevine.config import ConfigError, Settings
from safevine.web.client_address import ClientAddresses
from safevine.web.public_app import create_public_app
from safevine.web.server import background_server
from tests.canaries import NEVER_EXISTED, PUBLIC, plant
from tests.web.conftest import settings_for

REDIS_URL = "redis://127.0.0.1:6379/0"


def test_a_client_over_its_limit_gets_429_with_retry_after(sqlite_engine: Engine) -> None:
    plant(sqlite_engine)
    app = create_public_app(
        settings_for(
            sqlite_engine,
            rate_limits_enabled=True,
            rate_limit_client="3/minute",
            rate_limit_identifier="100/hour",
        )
    )
    with background_server(app) as base, httpx.Client(base_url=base) as client:
        answers = [client.post("/api/v1/search", json=PUBLIC.by_a_number()) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 200]
        limited = client.post("/api/v1/search", json=NEVER_EXISTED.by_a_number())
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert limited.json() == {"error": "Too many searches. Please wait and try again."}
        client.get("/")
        page = client.post(
            "/", data={**PUBLIC.by_a_number(), "csrf_token": client.cookies.get("sv_csrf") or ""}
        )
        assert page.status_code == 429 and "Searches are paused for now" in page.text
        assert "Please try again in 1 minute." in page.text
        assert int(page.headers["retry-after"]) >= 1
    app.state.safevine.public_engine.dispose()


def test_a_client_is_limited_per_identifier_but_cannot_lock_anyone_else_out(
    sqlite_engine: Engine,
) -> None:
    plant(sqlite_engine)
    app = create_public_app(
        settings_for(
            sqlite_engine,
            rate_limits_enabled=True,
            rate_limit_client="100/minute",
            rate_limit_identifier="2/hour",
            trusted_proxies=("127.0.0.1/32",),
        )
    )
    stranger = {"X-Forwarded-For": "203.0.113.66"}
    victim = {"X-Forwarded-For": "198.51.100.7"}
    with background_server(app) as base, httpx.Client(base_url=base) as client:
        for body in (PUBLIC.by_a_number(), NEVER_EXISTED.by_a_number()):
            statuses = [
                client.post("/api/v1/search", json=body, headers=stranger).status_code
                for _ in range(5)
            ]
            # A person who exists and one who does not are limited alike.
            assert statuses == [200, 200, 429, 429, 429]
            # The stranger's searches count against the stranger alone.
            answer = client.post("/api/v1/search", json=body, headers=victim)
            assert answer.status_code == 200
        found = client.post("/api/v1/search", json=PUBLIC.by_a_number(), headers=victim)
        assert found.json()["results"][0]["name"] == "Marisol Quintanilla"
        # Other identifiers are the stranger's to search still.
        other = client.post("/api/v1/search", json=PUBLIC.by_name(), headers=stranger)
        assert other.status_code == 200
    app.state.safevine.public_engine.dispose()


def test_redis_shares_the_counters_between_web_processes(sqlite_engine: Engine) -> None:
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.RedisError as error:
        if os.environ.get("SAFEVINE_REQUIRE_REDIS") == "1":
            pytest.fail(f"no Redis at {REDIS_URL}: {error}")
        pytest.skip(f"no Redis at {REDIS_URL}: {error}")
    plant(sqlite_engine)
    # A fresh secret gives fresh keys, so earlier runs' counters do not interfere.
    secret = uuid.uuid4().hex.encode() * 2
    settings = settings_for(
        sqlite_engine,
        rate_limits_enabled=True,
        secret_key=secret,
        rate_limit_client="2/minute",
        redis_url=REDIS_URL,
    )
    first, second = create_public_app(settings), create_public_app(settings)
    with background_server(first) as a, background_server(second) as b:
        assert httpx.post(f"{a}/api/v1/search", json=PUBLIC.by_a_number()).status_code == 200
        assert httpx.post(f"{b}/api/v1/search", json=PUBLIC.by_a_number()).status_code == 200
        assert httpx.post(f"{a}/api/v1/search", json=PUBLIC.by_a_number()).status_code == 429
    keys = redis.Redis.from_url(REDIS_URL).keys("*")
    assert keys and not any(PUBLIC.a_number.encode() in k or b"127.0.0.1" in k for k in keys)
    for app in (first, second):
        app.state.safevine.public_engine.dispose()


def test_an_a_number_is_limited_whatever_country_is_tried(sqlite_engine: Engine) -> None:
    # One client trying every country with one A-number has no more tries for it.
    plant(sqlite_engine)
    app = create_public_app(
        settings_for(
            sqlite_engine,
            rate_limits_enabled=True,
            rate_limit_client="100/minute",
            rate_limit_identifier="2/hour",
        )
    )
    with background_server(app) as base, httpx.Client(base_url=base) as client:
        statuses = [
            client.post(
                "/api/v1/search", json={"a_number": PUBLIC.a_number, "country_of_birth": country}
            ).status_code
            for country in ("MX", "GT", "SV", "HN")
        ]
        assert statuses == [200, 200, 429, 429]
    app.state.safevine.public_engine.dispose()


def _limited_by_client(sqlite_engine: Engine, **settings: object) -> list[int]:
    """Statuses of four searches, each claiming another client in X-Forwarded-For."""
    app = create_public_app(
        settings_for(
            sqlite_engine,
            rate_limits_enabled=True,
            rate_limit_client="2/minute",
            rate_limit_identifier="100/hour",
            **settings,
        )
    )
    with background_server(app) as base, httpx.Client(base_url=base) as client:
        statuses = [
            client.post(
                "/api/v1/search",
                json=NEVER_EXISTED.by_a_number(),
                headers={"X-Forwarded-For": f"203.0.113.{n}"},
            ).status_code
            for n in range(4)
        ]
    app.state.safevine.public_engine.dispose()
    return statuses


def test_forwarding_headers_are_ignored_unless_a_trusted_proxy_sends_them(
    sqlite_engine: Engine,
) -> None:
    plant(sqlite_engine)
    # By default the header is nobody's to set, loopback included: one client is one.
    assert _limited_by_client(sqlite_engine) == [200, 200, 429, 429]
    # A trusted proxy (here the test itself, on loopback) names four clients.
    assert _limited_by_client(sqlite_engine, trusted_proxies=("127.0.0.1/32",)) == [200] * 4


def test_the_client_is_the_first_address_no_trusted_proxy_wrote() -> None:
    def scope(peer: str, *forwarded: str) -> dict[str, object]:
        headers = [(b"x-forwarded-for", value.encode()) for value in forwarded]
        return {"client": (peer, 40000), "headers": headers}

    clients = ClientAddresses(("10.0.0.0/8", "::1"))
    assert clients.of(scope("203.0.113.9", "198.51.100.1")) == "203.0.113.9"
    assert clients.of(scope("10.0.0.2", "198.51.100.1")) == "198.51.100.1"
    # What the client wrote itself (left of the address the proxy saw) is ignored.
    assert clients.of(scope("10.0.0.2", "1.2.3.4, 198.51.100.1, 10.0.0.7")) == "198.51.100.1"
    assert clients.of(scope("10.0.0.2", "1.2.3.4", "198.51.100.1")) == "198.51.100.1"
    assert clients.of(scope("::1", "198.51.100.1")) == "198.51.100.1"
    assert clients.of(scope("::ffff:10.0.0.2", "198.51.100.1")) == "198.51.100.1"
    # Only trusted hops, or none: the peer itself.
    assert clients.of(scope("10.0.0.2", "10.0.0.3")) == "10.0.0.2"
    assert clients.of(scope("10.0.0.2")) == "10.0.0.2"
    assert ClientAddresses().of(scope("127.0.0.1", "198.51.100.1")) == "127.0.0.1"


def test_trusted_proxies_are_read_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAFEVINE_TRUSTED_PROXIES", " 10.0.0.5, 192.168.0.0/16 ,")
    assert Settings.from_env().trusted_proxies == ("10.0.0.5/32", "192.168.0.0/16")
    monkeypatch.setenv("SAFEVINE_TRUSTED_PROXIES", "10.0.0.5, proxy.internal")
    with pytest.raises(ConfigError, match=r"SAFEVINE_TRUSTED_PROXIES: 'proxy\.internal'"):
        Settings.from_env()
    monkeypatch.delenv("SAFEVINE_TRUSTED_PROXIES")
    assert Settings.from_env().trusted_proxies == ()


def test_limits_are_read_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAFEVINE_RATE_LIMIT_IDENTIFIER", "5/hour;20/day")
    monkeypatch.setenv("SAFEVINE_SEARCH_CROWD", " 50/hour ")
    monkeypatch.setenv("SAFEVINE_SEARCH_CROWD_DELAY", "3")
    monkeypatch.setenv("SAFEVINE_REGISTRATION_LIMIT_ADDRESS", "2/hour")
    settings = Settings.from_env()
    assert settings.rate_limit_identifier == "5/hour;20/day"
    assert (settings.search_crowd, settings.search_crowd_delay) == ("50/hour", 3)
    assert settings.registration_limit_address == "2/hour"
    for name, value, says in (
        ("SAFEVINE_RATE_LIMIT_CLIENT", "lots", "SAFEVINE_RATE_LIMIT_CLIENT must be limits"),
        ("SAFEVINE_RATE_LIMIT_IDENTIFIER", "0/hour", "at least 1 in a period"),
        ("SAFEVINE_SEARCH_CROWD", "20/hour;100/day", "SAFEVINE_SEARCH_CROWD must be one limit"),
        ("SAFEVINE_SEARCH_CROWD_DELAY", "-1", "SAFEVINE_SEARCH_CROWD_DELAY must be at least 0"),
        ("SAFEVINE_REGISTRATION_LIMIT_CLIENT", "3/fortnight", "REGISTRATION_LIMIT_CLIENT"),
    ):
        monkeypatch.setenv(name, value)
        with pytest.raises(ConfigError, match=says):
            Settings.from_env()
        monkeypatch.delenv(name)

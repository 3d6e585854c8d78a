"""A live app on a loopback port, over a real database holding the canaries."""

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import Engine

from safevine.config import Settings
from safevine.web.public_app import create_public_app
from safevine.web.server import background_server
from tests.canaries import plant

SECRET = b"test-secret-key-that-is-long-enough-000"


def settings_for(engine: Engine, **changes: object) -> Settings:
    url = engine.url.render_as_string(hide_password=False)
    values: dict[str, object] = {
        "database_url": url,
        "secret_key": SECRET,
        "rate_limits_enabled": False,
        "exit_url": "http://127.0.0.1:9/neutral",
        # A test that wants the staff service's feed health clock turns it on.
        "feed_health_every_seconds": 0,
        # Nor does a purge run on its own in the middle of a test.
        "purge_every_hours": 0,
    }
    values.update(changes)
    return Settings(**values)  # type: ignore[arg-type]


@dataclass
class Live:
    base: str
    client: httpx.Client
    engine: Engine

    def csrf(self) -> str:
        self.client.get("/")
        return self.client.cookies.get("sv_csrf") or ""


@pytest.fixture
def live(engine: Engine) -> Iterator[Live]:
    plant(engine)
    app = create_public_app(settings_for(engine))
    with background_server(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        yield Live(base, client, engine)
    app.state.safevine.public_engine.dispose()

"""A live app with staff tokens of every scope, over a database holding the canaries."""

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import Engine

from safevine.store.records import staff_tokens
from safevine.web.app import create_app
from safevine.web.server import background_server
from tests.canaries import plant
from tests.web.conftest import settings_for

SCOPES = ("ingest", "protect", "read", "report", "admin")


@dataclass
class Staff:
    base: str
    client: httpx.Client
    engine: Engine
    tokens: dict[str, str] = field(default_factory=dict)

    def as_(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


def make_tokens(engine: Engine) -> dict[str, str]:
    now = datetime.now(UTC)
    with engine.begin() as connection:
        made = {
            scope: staff_tokens.create(connection, f"{scope}-desk", [scope], now)
            for scope in SCOPES
        }
        made["protect2"] = staff_tokens.create(connection, "second-protector", ["protect"], now)
        made["revoked"] = staff_tokens.create(connection, "old-laptop", list(SCOPES), now)
        staff_tokens.revoke(connection, "old-laptop", now)
    return made


@pytest.fixture
def staff(engine: Engine) -> Iterator[Staff]:
    plant(engine)
    tokens = make_tokens(engine)
    app = create_app(settings_for(engine))
    with background_server(app) as base, httpx.Client(base_url=base, timeout=120) as client:
        yield Staff(base, client, engine, tokens)
    app.state.safevine.public_engine.dispose()
    app.state.safevine.records_engine.dispose()

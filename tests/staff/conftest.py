"""The staff service and the public service, live on loopback ports of their own, with
staff tokens of every scope, over a database holding the canaries."""

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine

from safevine.store.records import staff_tokens
from safevine.web.public_app import create_public_app
from safevine.web.server import background_server
from safevine.web.staff_app import create_staff_app
from tests.canaries import plant
from tests.web.conftest import settings_for

SCOPES = ("ingest", "protect", "read", "report", "admin")


@dataclass
class Staff:
    base: str
    client: httpx.Client  # the staff service
    engine: Engine
    public: httpx.Client  # the public site, as the public sees it
    public_app: FastAPI
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
    settings = settings_for(engine)
    staff_app, public_app = create_staff_app(settings), create_public_app(settings)
    with (
        background_server(staff_app) as base,
        background_server(public_app) as public_base,
        httpx.Client(base_url=base, timeout=120) as client,
        httpx.Client(base_url=public_base, timeout=120) as public,
    ):
        yield Staff(base, client, engine, public, public_app, tokens)
    public_app.state.safevine.public_engine.dispose()
    staff_app.state.staff.records_engine.dispose()


# Signed-in console sessions for three roles (tests/staff/desk.py).
from tests.staff.desk import desk  # noqa: E402, F401

"""A staff service with three accounts (sam a screener, sue a supervisor, ann an auditor)
over a database holding the canaries, and a way to sign each in through the console."""

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pyotp
import pytest
from sqlalchemy import Engine, select

from safevine.actions import accounts
from safevine.actions.actor import Actor
from safevine.contact_vault import ContactVault
from safevine.store.schema import audit_log
from safevine.web.server import background_server
from safevine.web.staff_app import create_staff_app
from tests.canaries import plant
from tests.web.conftest import SECRET, settings_for

PASSWORD = "a long enough password"
HIDDEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Desk:
    base: str
    engine: Engine
    keys: dict[str, str]
    app: object
    used: set[str]

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=30, follow_redirects=False)

    def code(self, name: str) -> str:
        totp = pyotp.TOTP(self.keys[name])
        code = totp.now()
        while code in self.used:
            time.sleep(1)
            code = totp.now()
        self.used.add(code)
        return code

    def password_step(self, client: httpx.Client, name: str, password: str) -> httpx.Response:
        form = client.get("/login")
        token = HIDDEN.search(form.text).group(1)  # type: ignore[union-attr]
        return client.post("/login", data={"name": name, "password": password, "csrf_token": token})

    def sign_in(self, name: str) -> tuple[httpx.Client, str]:
        """A signed-in client and its session's CSRF token."""
        client = self.client()
        assert self.password_step(client, name, PASSWORD).status_code == 303
        page = client.get("/login/code")
        token = HIDDEN.search(page.text).group(1)  # type: ignore[union-attr]
        done = client.post("/login/code", data={"code": self.code(name), "csrf_token": token})
        assert done.status_code == 303 and done.headers["location"] == "/", done.text
        return client, token

    def actions(self) -> list[tuple[str, str, str | None]]:
        with self.engine.connect() as c:
            rows = c.execute(
                select(audit_log.c.actor, audit_log.c.action, audit_log.c.reason).order_by(
                    audit_log.c.seq
                )
            ).all()
        return [tuple(r) for r in rows]  # type: ignore[misc]


@pytest.fixture
def desk(engine: Engine) -> Iterator[Desk]:
    plant(engine)
    keys = {}
    with engine.begin() as c:
        for name, role in (("sam", "screener"), ("sue", "supervisor"), ("ann", "auditor")):
            _, enrolment = accounts.create(
                c,
                ContactVault(SECRET),
                Actor("cli:test"),
                name,
                [role],
                PASSWORD,
                datetime.now(UTC),
            )
            keys[name] = enrolment.secret  # type: ignore[union-attr]
    app = create_staff_app(settings_for(engine))
    with background_server(app) as base:
        yield Desk(base, engine, keys, app, set())
    app.state.staff.records_engine.dispose()

"""The demo's staff: an administrator (who is also a supervisor and an auditor) and a
screener, with passwords and second-factor keys made fresh on every start and printed,
which only a demo may do."""

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine

from safevine.actions import accounts
from safevine.actions.actor import Actor
from safevine.contact_vault import ContactVault
from safevine.domain.errors import NotFoundError
from safevine.store.records import staff_accounts

DEMO = Actor("demo")
STAFF = (
    ("demo-admin", ["admin", "supervisor", "auditor"]),
    ("demo-screener", ["screener"]),
)


@dataclass(frozen=True)
class DemoStaff:
    name: str
    roles: list[str]
    password: str
    key: str


def demo_staff(engine: Engine, vault: ContactVault) -> list[DemoStaff]:
    now = datetime.now(UTC)
    made = []
    with engine.begin() as connection:
        for name, roles in STAFF:
            password = "-".join(secrets.token_hex(3) for _ in range(3))
            try:
                account = staff_accounts.by_name(connection, name)
            except NotFoundError:
                _, enrolment = accounts.create(connection, vault, DEMO, name, roles, password, now)
            else:
                staff_accounts.set_password(connection, account.id, password, now)
                enrolment = accounts.reset_mfa(connection, vault, DEMO, account.id, now)
            assert enrolment is not None
            made.append(DemoStaff(name, roles, password, enrolment.secret))
    return made

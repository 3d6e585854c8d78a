"""What the staff app holds for its lifetime: settings, the engine on the full records,
its metrics."""

from dataclasses import dataclass

from sqlalchemy import Engine
from starlette.requests import Request

from safevine.config import Settings
from safevine.contact_vault import ContactVault
from safevine.store.records.staff_accounts import LoginPolicy
from safevine.web.observability import Metrics


@dataclass
class StaffState:
    settings: Settings
    records_engine: Engine
    metrics: Metrics
    vault: ContactVault
    policy: LoginPolicy

    @classmethod
    def of(cls, request: Request) -> "StaffState":
        state = request.app.state.staff
        assert isinstance(state, cls)
        return state

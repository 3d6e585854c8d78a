"""What the app holds for its lifetime: settings, the public engine, the rate limiter."""

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from starlette.requests import Request

from safevine.config import Settings
from safevine.contact_vault import ContactVault
from safevine.web.rate_limits import RateLimiter

if TYPE_CHECKING:
    from safevine.web.observability import Metrics
    from safevine.web.public.search import Searcher


@dataclass
class AppState:
    settings: Settings
    public_engine: Engine
    limiter: RateLimiter | None
    vault: ContactVault
    # The full records, for the staff API only; public routes never touch it.
    records_engine: Engine
    metrics: "Metrics"
    searcher: "Searcher"

    @classmethod
    def of(cls, request: Request) -> "AppState":
        state = request.app.state.safevine
        assert isinstance(state, cls)
        return state


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"

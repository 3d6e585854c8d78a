"""What the public app holds for its lifetime: settings, the public engine, the rate
limiter. Nothing here can read the full records."""

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from starlette.requests import Request

from safevine.config import Settings
from safevine.contact_vault import ContactVault
from safevine.web.client_address import ClientAddresses
from safevine.web.public.provider_reports import ReportBatches
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
    metrics: "Metrics"
    searcher: "Searcher"
    clients: ClientAddresses = field(default_factory=ClientAddresses)
    # Providers' reports on messages, applied in batches (`web/public/provider_reports.py`).
    reports: ReportBatches = field(init=False)

    def __post_init__(self) -> None:
        self.reports = ReportBatches(self.public_engine, self.settings.retry_base_seconds)

    @classmethod
    def of(cls, request: Request) -> "AppState":
        state = request.app.state.safevine
        assert isinstance(state, cls)
        return state


def client_address(request: Request) -> str:
    """The client the rate limits count (see `web.client_address`)."""
    return AppState.of(request).clients.of(request.scope)

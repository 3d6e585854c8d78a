"""Per-app metrics (Prometheus), and what the request log names a request by. Labels carry
routes, statuses, channels and states: never a name, A-number, address or search term.
The requests are counted and logged by `web.safety_layer`."""

import itertools
import secrets
import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select
from starlette.types import Scope

from safevine.domain.notification_state import WAITING
from safevine.store.public.tables import notifications, registrations


class Metrics:
    """A process's own metrics. The staff service adds the outbox's counts
    (`watch_outbox`); the public service serves its own on an internal port only."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "safevine_http_requests",
            "HTTP requests by route and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.search_seconds = Histogram(
            "safevine_search_seconds",
            "Time to answer a public search",
            buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
            registry=self.registry,
        )
        self.ingest_records = Counter(
            "safevine_ingest_records",
            "Ingested records by outcome",
            ["kind", "outcome"],
            registry=self.registry,
        )

    def watch_outbox(self, engine: Engine) -> None:
        self.registry.register(OutboxCollector(engine))


class OutboxCollector(Collector):
    """Notification and registration counts read from the database at scrape time."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        by_state = GaugeMetricFamily(
            "safevine_notifications",
            "Notifications by state and channel",
            labels=["state", "channel"],
        )
        depth = GaugeMetricFamily("safevine_queue_depth", "Notifications waiting to be sent")
        oldest = GaugeMetricFamily(
            "safevine_queue_oldest_seconds", "Age of the oldest notification waiting to be sent"
        )
        regs = GaugeMetricFamily(
            "safevine_registrations", "Registrations by state", labels=["state"]
        )
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(notifications.c.state, registrations.c.channel, func.count())
                .join(registrations, registrations.c.id == notifications.c.registration_id)
                .group_by(notifications.c.state, registrations.c.channel)
            ).all()
            first = connection.execute(
                select(func.min(notifications.c.created_at)).where(
                    notifications.c.state.in_(WAITING)
                )
            ).scalar()
            reg_rows = connection.execute(
                select(registrations.c.state, func.count()).group_by(registrations.c.state)
            ).all()
        waiting = 0
        for state, channel, count in rows:
            by_state.add_metric([state, channel], count)
            if state in WAITING:
                waiting += count
        depth.add_metric([], waiting)
        oldest.add_metric([], (time.time() - first.timestamp()) if first else 0.0)
        for state, count in reg_rows:
            regs.add_metric([state], count)
        yield from (by_state, depth, oldest, regs)


def route_of(scope: Scope) -> str:
    """The route template (`/m/{token}`), so no token, reference or term reaches a log.

    The router records the matched route in the scope, which the middleware shares.
    """
    route = scope.get("route")
    return str(getattr(route, "path", "unmatched"))


# Request ids: unique per process by a counter, across processes by a random prefix
# (a uuid4 per request cost 3% of the server's time under load). The dash keeps the two
# apart, so no run of digits in a log line can read as an A-number.
_PROCESS = secrets.token_hex(4)
_SEQUENCE = itertools.count()
# Where the request id waits in the ASGI scope, for a failure logged further in.
REQUEST_ID = "safevine.request_id"


def new_request_id() -> str:
    return f"{_PROCESS}-{next(_SEQUENCE):08x}"

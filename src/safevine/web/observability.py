"""Per-app metrics (Prometheus) and the request log. Labels carry routes, statuses, channels
and states: never a name, A-number, address or search term."""

import itertools
import logging
import secrets
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from safevine.domain.notification_state import WAITING
from safevine.store.public.tables import notifications, registrations

log = logging.getLogger("safevine.web")


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


class Observe:
    """Pure ASGI middleware: counts each request by route and status, times searches and
    writes the request log. The status is taken from `http.response.start`; a request that
    raises before answering counts as a 500."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        # The counter's child for each (route, method, status), as `labels()` would find
        # it again on every request, at a dictionary lookup's cost.
        self._counted: dict[tuple[str, str, int], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = f"{_PROCESS}-{next(_SEQUENCE):08x}"
        scope[REQUEST_ID] = request_id
        started = time.perf_counter()
        status = 500

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        finally:
            elapsed = time.perf_counter() - started
            route = route_of(scope)
            method = scope["method"]
            key = (route, method, status)
            counter = self._counted.get(key)
            if counter is None:
                counter = self._counted[key] = self.metrics.requests.labels(
                    route, method, str(status)
                )
            counter.inc()
            if route == "/api/v1/search" or (route == "/" and method == "POST"):
                self.metrics.search_seconds.observe(elapsed)
            if log.isEnabledFor(logging.INFO):
                # The request id goes to the log only: a header that differs per response
                # would tell two otherwise identical answers apart.
                extra: dict[str, Any] = {
                    "request_id": request_id,
                    "route": route,
                    "method": method,
                    "status": status,
                    "ms": round(elapsed * 1000, 1),
                }
                log.info("request", extra=extra)

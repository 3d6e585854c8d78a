"""Feed health in the staff service's `/metrics`: facilities by state, and each facility's
seconds since it last sent anything, read from the last evaluation at scrape time."""

import time
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, select

from safevine.domain.feed_health import Health
from safevine.store.records import feed_health
from safevine.store.schema import facilities, facility_health


class FeedHealthCollector(Collector):
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        by_state = GaugeMetricFamily(
            "safevine_feed_facilities",
            "Facilities by feed health state (paused and closed are staff holds)",
            labels=["state"],
        )
        silence = GaugeMetricFamily(
            "safevine_feed_seconds_since_data",
            "Seconds since each facility last sent a roster or event that counted",
            labels=["facility"],
        )
        with self.engine.connect() as connection:
            counted = feed_health.counts(connection)
            rows = connection.execute(
                select(facilities.c.code, facility_health.c.last_data).join(
                    facilities, facilities.c.id == facility_health.c.facility_id
                )
            ).all()
        # Every state, zero included, so an alert on `down > 0` has a series to read.
        for health in Health:
            by_state.add_metric([health.value], int(counted.get(health.value, 0)))
        now = time.time()
        for code, last in rows:
            if last is not None:
                silence.add_metric([code], max(0.0, now - last.timestamp()))
        yield by_state
        yield silence

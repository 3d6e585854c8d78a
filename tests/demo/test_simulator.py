"""The demo's feed keeps going when one event cannot be fed."""

import asyncio
import logging
import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine

from safevine.demo import simulator
from tests import loops


def test_a_failed_event_does_not_end_the_demo_feed(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[int] = []

    def emit(engine: Engine, rng: random.Random, silent: int | None = None) -> str | None:
        calls.append(len(calls))
        if len(calls) == 1:
            raise RuntimeError("database is locked")
        return "transferred"

    monkeypatch.setattr(simulator, "emit", emit)

    async def run() -> None:
        stop = asyncio.Event()
        feed = asyncio.create_task(simulator.simulate(sqlite_engine, stop, every_seconds=0.01))
        for _ in range(500):
            if len(calls) >= 3:
                break
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(feed, 5)

    with caplog.at_level(logging.WARNING, logger="safevine.demo"):
        loops.run(run())
    assert len(calls) >= 3
    # The console shows the message alone: it says what kind of failure it was.
    said = [r.getMessage() for r in caplog.records if r.name == "safevine.demo"]
    assert said == ["demo feed: an event could not be fed (RuntimeError); the next one follows"]


@pytest.mark.parametrize(
    "zone", ["America/Phoenix", "America/Anchorage", "America/New_York", "Pacific/Guam", None]
)
def test_a_demo_hearing_is_set_for_nine_in_the_morning_where_the_facility_is(
    zone: str | None,
) -> None:
    """As a court sets one, two weeks on: the messages show it in the facility's time, so
    a hearing at 09:00 UTC read "2:00 AM MST" to a newcomer."""
    now = datetime(2026, 12, 6, 23, 30, tzinfo=UTC)
    hearing = datetime.fromisoformat(simulator._hearing_at(now, zone))
    local_zone = ZoneInfo(zone or "UTC")
    assert (hearing.hour, hearing.minute) == (9, 0)
    assert hearing.utcoffset() == hearing.astimezone(local_zone).utcoffset()
    assert hearing.date() == (now + timedelta(days=14)).astimezone(local_zone).date()
    assert hearing > now

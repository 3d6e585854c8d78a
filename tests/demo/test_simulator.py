"""The demo's feed keeps going when one event cannot be fed."""

import asyncio
import random

import pytest
from sqlalchemy import Engine

from safevine.demo import simulator
from tests import loops


def test_a_failed_event_does_not_end_the_demo_feed(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
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

    loops.run(run())
    assert len(calls) >= 3

"""`Dispatcher.run` on PostgreSQL: the next batch takes off while the last sends of the one
before are in flight, and never earlier than that (a protection waits for at most those
sends and one batch). On SQLite batches take turns."""

import asyncio
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from itertools import pairwise
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from safevine.config import Settings
from safevine.notify import dispatcher as dispatcher_module
from safevine.notify.dispatcher import Dispatcher
from safevine.store.public.tables import notifications
from tests.canaries import PUBLIC
from tests.notify.conftest import Delivery

BATCH, CONCURRENCY = 6, 2


def _run_until_sent(delivery: Delivery, settings: Settings) -> None:
    def unsent() -> int:
        with delivery.engine.connect() as connection:
            return int(
                connection.execute(
                    select(func.count())
                    .select_from(notifications)
                    .where(notifications.c.state != "sent")
                ).scalar_one()
            )

    async def work() -> None:
        dispatcher = Dispatcher(settings, delivery.public, name="overlap")
        stop = asyncio.Event()
        running = asyncio.create_task(dispatcher.run(stop, idle_seconds=0.05))
        try:
            for _ in range(600):
                if not unsent() or running.done():
                    break
                await asyncio.sleep(0.05)
        finally:
            stop.set()
            try:
                await running
            finally:
                await dispatcher.close()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, work()).result()
    assert unsent() == 0


def test_batches_overlap_by_at_most_the_sends_in_flight(delivery: Delivery) -> None:
    ref = delivery.ref(PUBLIC.a_number)
    for n in range(4 * BATCH):
        delivery.register(ref, f"r{n}@example.org")
    delivery.sink.delay = 0.02
    settings = Settings(
        **{**delivery.settings.__dict__, "worker_batch": BATCH, "worker_concurrency": CONCURRENCY}
    )
    _run_until_sent(delivery, settings)

    accepted = {r.message_id: r.at for r in delivery.sink.received}
    assert len(delivery.sink.received) == len(accepted) == 4 * BATCH  # each once
    batches: dict[datetime, list[float]] = defaultdict(list)
    with delivery.engine.connect() as connection:
        for key, claimed_at in connection.execute(
            select(notifications.c.idempotency_key, notifications.c.claimed_at)
        ):
            batches[claimed_at].append(accepted[f"<{key}@localhost>"])
    claims = sorted(batches)
    assert len(claims) == 4
    overlapped = 0
    for earlier, later in pairwise(claims):
        # When a batch was claimed, at most CONCURRENCY of the one before were unanswered.
        left = [at for at in batches[earlier] if at > later.timestamp()]
        assert len(left) <= CONCURRENCY, (earlier, later, left)
        overlapped += bool(left)
    if delivery.engine.dialect.name == "postgresql":
        assert overlapped  # and the next batch did not wait for them
    else:
        assert overlapped == 0


def test_a_batch_that_cannot_be_recorded_stops_the_worker_and_loses_nothing(
    postgres_delivery: Delivery, monkeypatch: pytest.MonkeyPatch
) -> None:
    delivery = postgres_delivery
    ref = delivery.ref(PUBLIC.a_number)
    for n in range(4 * BATCH):
        delivery.register(ref, f"r{n}@example.org")
    delivery.sink.delay = 0.02
    settings = Settings(
        **{**delivery.settings.__dict__, "worker_batch": BATCH, "worker_concurrency": CONCURRENCY}
    )
    commits = 0
    real = dispatcher_module._commit_sent

    def failing_second(*args: Any) -> None:
        nonlocal commits
        commits += 1
        if commits == 2:
            raise OperationalError("UPDATE", {}, Exception("connection lost"))
        real(*args)

    monkeypatch.setattr(dispatcher_module, "_commit_sent", failing_second)
    with pytest.raises(OperationalError):
        _run_until_sent(delivery, settings)
    # Every connection was given back (the batch in the air was seen through and rolled
    # back), and what was not recorded goes again once its lease runs out.
    assert delivery.public.pool.checkedout() == 0  # type: ignore[attr-defined]
    monkeypatch.setattr(dispatcher_module, "_commit_sent", real)
    time.sleep(settings.worker_lease_seconds + 0.5)
    _run_until_sent(delivery, settings)
    keys = {r.message_id for r in delivery.sink.received}
    with delivery.engine.connect() as connection:
        stored = set(connection.execute(select(notifications.c.idempotency_key)).scalars())
    assert keys == {f"<{k}@localhost>" for k in stored}  # at least once, same keys

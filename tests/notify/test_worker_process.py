"""`safevine worker` as real processes: killed mid-batch, run in pairs, and racing a
protection, against a real SMTP server that logs when it accepted each message."""

import os
import signal
import string
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, func, select

from safevine.domain.batch_thresholds import Thresholds
from safevine.ingest.events import ingest_events
from safevine.ingest.protections import ingest_protections
from safevine.store.public.tables import notifications
from safevine.store.records.persons import person_ids_by_a_number
from safevine.store.records.protection import protect
from tests.builders import NOW, csv_lines, days_ago, event, jsonl, load_facilities, person
from tests.notify.conftest import Delivery
from tests.web.conftest import SECRET

SAFEVINE = Path(sys.executable).parent / "safevine"
NO_HOLDS = Thresholds(burst_minimum=10**9)


def letters(n: int) -> str:
    out = ""
    while True:
        n, r = divmod(n, 26)
        out = string.ascii_lowercase[r] + out
        if n == 0:
            return out.capitalize()


def crowd(delivery: Delivery, people: int, events_each: int) -> list[str]:
    """`people` public persons, one email registration each, `events_each` transfers each."""
    load_facilities(delivery.engine, "F2")
    a_numbers = [f"4{n:08d}" for n in range(people)]
    who = {a: person(a, "Nombre", f"Familia{letters(n)}") for n, a in enumerate(a_numbers)}
    # A synthetic crowd arriving and moving at once is exactly what the batch thresholds
    # hold back for review; here it is meant.
    ingest_events(
        delivery.engine,
        jsonl(*(event(f"b-{a}", "booked", days_ago(30), who[a]) for a in a_numbers)),
        source="crowd",
        fmt="jsonl",
        thresholds=NO_HOLDS,
    )
    rows = [[a, "cleared", NOW.date().isoformat()] for a in a_numbers]
    ingest_protections(
        delivery.engine, csv_lines(["a_number", "status", "as_of"], *rows), source="crowd.csv"
    )
    for a in a_numbers:
        delivery.register(delivery.ref(a), f"{a}@example.org")
    moves = [
        event(
            f"t-{a}-{i}",
            "transferred",
            days_ago(20 - i * 0.01),
            who[a],
            facility="F1" if i % 2 else "F2",
        )
        for a in a_numbers
        for i in range(events_each)
    ]
    summary = ingest_events(
        delivery.engine,
        jsonl(*moves),
        source="moves",
        fmt="jsonl",
        thresholds=NO_HOLDS,
    )
    assert summary.applied == people * events_each
    return a_numbers


def start_worker(delivery: Delivery, **env: str) -> subprocess.Popen[bytes]:
    settings = delivery.settings
    environment = {
        **os.environ,
        "SAFEVINE_DATABASE_URL": settings.database_url,
        "SAFEVINE_SECRET_KEY": SECRET.decode(),
        "SAFEVINE_SMTP_PORT": str(settings.smtp_port),
        "SAFEVINE_WORKER_LEASE_SECONDS": "2",
        "SAFEVINE_RETRY_BASE_SECONDS": "1",
        "SAFEVINE_PUBLIC_BASE_URL": settings.public_base_url,
        **env,
    }
    return subprocess.Popen(
        [str(SAFEVINE), "worker"],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def unsent(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(
                select(func.count())
                .select_from(notifications)
                .where(notifications.c.state != "sent")
            ).scalar_one()
        )


def wait_until_all_sent(engine: Engine, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while unsent(engine) and time.monotonic() < deadline:
        time.sleep(0.2)
    with engine.connect() as connection:
        states = connection.execute(
            select(notifications.c.purpose, notifications.c.state, func.count()).group_by(
                notifications.c.purpose, notifications.c.state
            )
        ).all()
    assert unsent(engine) == 0, states


def stop(worker: subprocess.Popen[bytes]) -> None:
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        worker.kill()
        raise


def keys(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return {
            f"<{k}@localhost>"
            for k in connection.execute(select(notifications.c.idempotency_key)).scalars()
        }


def test_a_worker_killed_mid_batch_loses_nothing(delivery: Delivery) -> None:
    crowd(delivery, people=20, events_each=5)  # 20 codes + 100 updates
    delivery.sink.delay = 0.05
    first = start_worker(delivery, SAFEVINE_WORKER_BATCH="40", SAFEVINE_WORKER_CONCURRENCY="4")
    delivery.sink.wait_for(10)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    assert unsent(delivery.engine) > 0  # it really died with work in hand
    delivery.sink.delay = 0.0
    second = start_worker(delivery)
    try:
        wait_until_all_sent(delivery.engine)
    finally:
        stop(second)
    received = [r.message_id for r in delivery.sink.received]
    # At least once, each time under the same Message-ID.
    assert set(received) == keys(delivery.engine)
    assert len(received) >= len(keys(delivery.engine))


def test_two_workers_never_send_the_same_notification_twice(postgres_delivery: Delivery) -> None:
    delivery = postgres_delivery
    crowd(delivery, people=30, events_each=10)  # 330 messages
    delivery.sink.delay = 0.005
    workers = [start_worker(delivery, SAFEVINE_WORKER_BATCH="20") for _ in range(2)]
    try:
        wait_until_all_sent(delivery.engine)
    finally:
        for worker in workers:
            stop(worker)
    received = [r.message_id for r in delivery.sink.received]
    assert len(received) == len(set(received)) == len(keys(delivery.engine))
    with delivery.engine.connect() as connection:
        claimers = set(connection.execute(select(notifications.c.claimed_by)).scalars())
    assert len(claimers) == 2  # both really worked


def test_nothing_about_a_person_leaves_after_their_protection_commits(delivery: Delivery) -> None:
    a_numbers = crowd(delivery, people=60, events_each=40)  # 60 codes + 2,400 updates
    delivery.sink.delay = 0.01
    worker = start_worker(delivery, SAFEVINE_WORKER_BATCH="50", SAFEVINE_WORKER_CONCURRENCY="10")
    committed: dict[str, float] = {}
    try:
        delivery.sink.wait_for(300)
        sample = a_numbers[::6]
        for a in sample:
            with delivery.engine.begin() as connection:
                person_id = person_ids_by_a_number(connection, [a])[a]
                protect(
                    connection,
                    person_id,
                    actor="test",
                    source="staff",
                    reason="1367",
                    now=datetime.now(UTC),
                )
            committed[a] = time.time()
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            with delivery.engine.connect() as connection:
                left = connection.execute(
                    select(func.count())
                    .select_from(notifications)
                    .where(notifications.c.state.in_(("queued", "retrying", "sending")))
                ).scalar_one()
            if left == 0:
                break
            time.sleep(0.3)
        assert left == 0
    finally:
        stop(worker)
    names = {a: f"Familia{letters(n)}" for n, a in enumerate(a_numbers)}
    late = [
        (a, r.at - committed[a])
        for r in delivery.sink.received
        for a in committed
        if f"Nombre {names[a]} " in r.text and r.at > committed[a]
    ]
    assert late == []
    # The sample was protected mid-run: some of their messages had gone, the rest never will.
    with delivery.engine.connect() as connection:
        cancelled = connection.execute(
            select(func.count())
            .select_from(notifications)
            .where(notifications.c.state == "cancelled")
        ).scalar_one()
    assert cancelled > 0
    assert len(delivery.sink.received) < 60 + 60 * 40

"""A real `safevine worker` killed in the middle of a call's repeat cycle, while the provider
is placing a call it asked for, and started again: no attempt is lost and none doubled.
The provider keeps its word on idempotency keys, as Twilio does, so the dead worker's
attempt, sent again under the same key, is the same call; its status, arriving after the
new worker recorded it, moves the cycle on; the PIN ends it."""

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from safevine.store.public.tables import call_attempts, notifications
from tests.notify.conftest import PIN, PROVIDER_TOKEN
from tests.notify.test_calls import NUMBER, Line, line  # noqa: F401 - the fixture
from tests.notify.test_delivery import release
from tests.notify.test_worker_process import start_worker, stop


def wait_for(what: str, done: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_a_worker_killed_mid_cycle_loses_no_call_and_places_none_twice(
    line: Line,  # noqa: F811 - the fixture imported above
) -> None:
    d, provider = line.delivery, line.delivery.provider
    provider.honour_idempotency = True
    # Long enough for a new worker to take the dead one's claim (its lease is 2 s) and
    # record the call before the provider reports on it.
    provider.ring_seconds = 5
    provider.calls[NUMBER] = ["no-answer", "no-answer", f"pin:{PIN}"]
    env = {
        "SAFEVINE_SMS_API_BASE": provider.base,
        "SAFEVINE_SMS_ACCOUNT_SID": "AC123",
        "SAFEVINE_SMS_AUTH_TOKEN": PROVIDER_TOKEN,
        "SAFEVINE_SMS_FROM": "+15550001111",
        "SAFEVINE_PUBLIC_BASE_URL": line.base,
    }

    def event() -> Any:
        return line.event()

    def placed() -> list[dict[str, Any]]:
        # The code's call (placed in the fixture) is not part of the cycle.
        return [r for r in provider.requests if r["kind"] == "Calls"][1:]

    def due_now() -> None:
        with d.engine.begin() as c:
            c.execute(
                update(notifications)
                .where(notifications.c.id == event().id)
                .values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1))
            )

    worker = start_worker(d, **env)
    try:
        release(d.engine)
        wait_for("the first call", lambda: event() is not None and event().state == "retrying")
        assert event().attempts == 1
        # The second call: the provider takes 3 s to answer, and the worker dies meanwhile.
        provider.answer_delay = 3
        due_now()
        wait_for("the second call to reach the provider", lambda: len(placed()) == 2)
        worker.kill()
        worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
    provider.answer_delay = 0
    assert event().state == "sending"  # claimed, and nothing recorded
    worker = start_worker(d, **env)
    try:
        wait_for(
            "the second call's outcome",
            lambda: event().state == "retrying" and event().attempts == 2,
        )
        due_now()
        wait_for("the PIN", lambda: event().state == "acknowledged")
    finally:
        stop(worker)

    row = event()
    assert (row.state, row.attempts, row.receipt) == ("acknowledged", 3, "pin")
    tokens = [r["headers"]["i-twilio-idempotency-token"] for r in placed()]
    # The dead worker's attempt went again under its own key, and the provider took it as
    # the same call: three calls placed, one per attempt.
    assert len(tokens) == 4 and tokens[1] == tokens[2] and len(set(tokens)) == 3
    with d.engine.connect() as c:
        attempts = list(
            c.execute(
                select(call_attempts.c.attempt, call_attempts.c.outcome, call_attempts.c.call_sid)
                .where(call_attempts.c.notification_id == row.id)
                .order_by(call_attempts.c.id)
            )
        )
    assert [(a.attempt, a.outcome) for a in attempts] == [
        (1, "no_answer"),
        (2, "no_answer"),
        (3, "acknowledged"),
    ]
    assert len({a.call_sid for a in attempts}) == 3

"""A real `safevine worker` killed with SIGKILL in the middle of a call's repeat cycle, just
after the provider took a call it asked for (the provider places it, and holds its answer
until the worker is dead), and started again at once: no attempt is lost and none doubled.

The provider simulator places every request it gets, whatever its idempotency token, so a
call asked for twice rings twice and shows as one token twice. The call the dead worker
never recorded reports back all the same (its status, and the keys pressed on it): safevine
takes that report as the attempt's record, so the cycle goes on from it, and the claim the
worker left behind is not sent again when its lease runs out. Repeats come every 2 seconds
here (the public service's `call_repeats`), the lease is 8, and a call rings for 1."""

import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from safevine.domain.call_repeats import RepeatRules
from safevine.domain.contact_address import Channel
from safevine.store.public.tables import call_attempts, notifications
from tests.canaries import PUBLIC
from tests.loops import wait_until
from tests.notify.conftest import PIN, PROVIDER_TOKEN, Delivery, heard_from_provider
from tests.notify.test_delivery import release
from tests.notify.test_worker_process import start_worker, stop

NUMBER = "+15550100123"
LEASE_SECONDS = 8
RING_SECONDS = 1.0
REPEAT = timedelta(seconds=2)


@dataclass
class Cycle:
    delivery: Delivery
    base: str

    def event(self) -> Any:
        with self.delivery.engine.connect() as c:
            return c.execute(
                select(notifications).where(notifications.c.purpose == "event")
            ).first()

    def placed(self) -> list[dict[str, Any]]:
        """The calls the provider was asked to place about the event (the code's call,
        made before, is not part of the cycle)."""
        return [r for r in self.delivery.provider.requests if r["kind"] == "Calls"][1:]

    def attempts(self) -> list[Any]:
        row = self.event()
        with self.delivery.engine.connect() as c:
            return list(
                c.execute(
                    select(call_attempts)
                    .where(call_attempts.c.notification_id == row.id)
                    .order_by(call_attempts.c.id)
                )
            )

    def worker(self) -> subprocess.Popen[bytes]:
        provider = self.delivery.provider
        return start_worker(
            self.delivery,
            SAFEVINE_SMS_API_BASE=provider.base,
            SAFEVINE_SMS_ACCOUNT_SID="AC123",
            SAFEVINE_SMS_AUTH_TOKEN=PROVIDER_TOKEN,
            SAFEVINE_SMS_FROM="+15550001111",
            SAFEVINE_PUBLIC_BASE_URL=self.base,
            SAFEVINE_WORKER_LEASE_SECONDS=str(LEASE_SECONDS),
        )


@pytest.fixture
def cycle(delivery: Delivery) -> Iterator[Cycle]:
    # The public service decides the repeats, from the call statuses it hears.
    delivery.settings = replace(
        delivery.settings, call_repeats=RepeatRules(REPEAT, REPEAT, timedelta(hours=1))
    )
    with heard_from_provider(delivery) as base:
        delivery.register(delivery.ref(PUBLIC.a_number), NUMBER, Channel.VOICE)
        delivery.dispatch()  # the confirmation code: a call of its own, answered
        delivery.provider.wait_for_callbacks(1)
        delivery.provider.ring_seconds = RING_SECONDS
        yield Cycle(delivery, base)


@pytest.mark.parametrize(
    "scripts",
    [
        # Nobody answers the call placed as the worker dies: it is repeated once more,
        # and the PIN is entered on the third call.
        pytest.param(["no-answer", "no-answer", f"pin:{PIN}"], id="unanswered"),
        # The registrant enters the PIN on the call placed as the worker dies.
        pytest.param(["no-answer", f"pin:{PIN}"], id="pin-on-it"),
    ],
)
def test_a_worker_killed_mid_cycle_loses_no_call_and_places_none_twice(
    cycle: Cycle, scripts: list[str]
) -> None:
    d, provider = cycle.delivery, cycle.delivery.provider
    provider.calls[NUMBER] = list(scripts)
    worker = cycle.worker()
    try:
        release(d.engine)
        wait_until(
            "the first call's outcome",
            lambda: cycle.event().state == "retrying" and len(cycle.attempts()) == 1,
        )
        # The next call: the provider takes it and places it, and answers only after 30 s.
        provider.answer_delay = 30
        wait_until("the second call to reach the provider", lambda: len(cycle.placed()) == 2)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(timeout=10)
    killed_at = time.monotonic()
    provider.answer_delay = 0
    row = cycle.event()
    # It died in the send: the claim is left, and nothing of the second call recorded.
    assert (row.state, row.attempts) == ("sending", 1)

    worker = cycle.worker()
    try:
        wait_until("the PIN", lambda: cycle.event().state == "acknowledged", seconds=60)
        # Past the dead worker's lease, with the new worker running: nothing is sent again.
        time.sleep(max(0.0, killed_at + LEASE_SECONDS + 3 - time.monotonic()))
    finally:
        stop(worker)

    calls = len(scripts)
    row = cycle.event()
    assert (row.state, row.receipt, row.attempts) == ("acknowledged", "pin", calls)
    # Each attempt reached the provider once: one call per idempotency key.
    tokens = [r["headers"]["i-twilio-idempotency-token"] for r in cycle.placed()]
    assert len(tokens) == calls and set(Counter(tokens).values()) == {1}, Counter(tokens)
    # Every call placed is an attempt on record, with its outcome, in order.
    recorded = cycle.attempts()
    outcomes = ["no_answer"] * (calls - 1) + ["acknowledged"]
    assert [(a.attempt, a.outcome) for a in recorded] == list(
        zip(range(1, calls + 1), outcomes, strict=True)
    )
    # ... each the call whose status the provider posted (after the code's own call).
    assert [a.call_sid for a in recorded] == [sid for sid, _, _ in provider.callbacks[1:]]
    assert all(code == 204 for _, _, code in provider.callbacks)
    said = [text for _, kind, text in provider.heard if kind == "said"]
    assert sum("We have your confirmation" in text for text in said) == 1

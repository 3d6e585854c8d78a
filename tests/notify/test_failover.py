"""Provider failover, through two real provider simulators (and two SMTP relays) over HTTP:
a first provider that fails or goes silent is left for the next, a text with no receipt
goes again through the other, an attempt a dead worker may have sent stays with its
provider, and no message ever reaches a registrant through two providers at once."""

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from safevine.config import PhoneProvider, Settings, SmtpRelay
from safevine.domain.contact_address import Channel
from safevine.domain.provider_health import FailoverRules
from safevine.notify.dispatcher import Dispatcher
from safevine.store.public.tables import notifications
from safevine.web.public.sms_inbound import twilio_signature
from safevine.web.server import free_port
from tests.canaries import NON_PUBLIC, PUBLIC
from tests.loops import run
from tests.notify.conftest import PROVIDER_TOKEN, Delivery, heard_from_provider
from tests.notify.servers import Provider, provider_stub, smtp_sink
from tests.notify.test_delivery import release

NUMBERS = [f"+1555010030{i}" for i in range(4)]
FIRST, SECOND = "127.0.0.1#1", "127.0.0.1#2"
RULES = FailoverRules(minimum=3)
# Each provider signs its callbacks with its own token.
SECOND_TOKEN = "the second provider's token"


@dataclass
class Two:
    delivery: Delivery
    first: Provider
    second: Provider

    def settings(self, **changes: Any) -> Settings:
        # Signed receipts only where a test listens for them (`heard`).
        token = self.delivery.settings.sms_auth_token and SECOND_TOKEN
        self.second.auth_token = token
        second = PhoneProvider("", self.second.base, "AC456", token, "+15550002222", "+15550002222")
        return replace(
            self.delivery.settings,
            more_phone_providers=(second,),
            failover=RULES,
            **changes,
        )

    def rows(self) -> list[Any]:
        with self.delivery.engine.connect() as c:
            return list(c.execute(select(notifications).order_by(notifications.c.id)))

    def texts(self, provider: Provider) -> list[dict[str, Any]]:
        return [r for r in provider.requests if r["kind"] == "Messages"]


@pytest.fixture
def two(delivery: Delivery) -> Iterator[Two]:
    with provider_stub() as second:
        yield Two(delivery, delivery.provider, second)


@contextmanager
def heard(two: Two) -> Iterator[str]:
    """Both providers' signed callbacks heard by the running public service, which knows
    both (as a deployment's every process does)."""
    two.delivery.settings = replace(two.delivery.settings, sms_auth_token=PROVIDER_TOKEN)
    two.delivery.settings = two.settings()
    with heard_from_provider(two.delivery) as base:
        yield base


async def work_until(dispatcher: Dispatcher, done: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, f"not all sent in time: {states(dispatcher)}"
        report = await dispatcher.run_once()
        if report.claimed == 0:
            await asyncio.sleep(0.05)


def states(dispatcher: Dispatcher) -> list[tuple[Any, ...]]:
    n = notifications
    with dispatcher.engine.connect() as c:
        return [
            tuple(r) for r in c.execute(select(n.c.id, n.c.state, n.c.sending_via, n.c.last_error))
        ]


def all_in(two: Two, *states: str) -> Callable[[], bool]:
    return lambda: all(r.state in states for r in two.rows())


def no_canary_in(text: str) -> None:
    for canary in NON_PUBLIC:
        for identifier in canary.identifiers:
            assert identifier not in text


def test_a_first_provider_that_fails_is_left_for_the_next(
    two: Two, caplog: pytest.LogCaptureFixture
) -> None:
    d = two.delivery
    two.first.fail_next = 10_000
    ref = d.ref(PUBLIC.a_number)
    for number in NUMBERS:
        d.register(ref, number, Channel.SMS)

    async def scenario() -> None:
        dispatcher = Dispatcher(two.settings(), d.public, name="failover-worker")
        try:
            await work_until(dispatcher, all_in(two, "sent"))
            refused = len(two.first.requests)
            release(d.engine)
            await work_until(dispatcher, lambda: len(two.rows()) == 8 and all_in(two, "sent")())
            # Once it was left, nothing more was tried through the first.
            assert len(two.first.requests) == refused
            assert FIRST in dispatcher.failover.health["sms"].demoted(datetime.now(UTC))
        finally:
            await dispatcher.close()

    with caplog.at_level(logging.INFO):
        run(scenario())
    # Each code was refused once by the first provider (all claimed before it was judged)
    # and then taken by the second; the release went straight to the second.
    assert len(two.texts(two.first)) == len(NUMBERS)
    taken = two.texts(two.second)
    assert Counter(r["form"]["To"] for r in taken) == {n: 2 for n in NUMBERS}
    keys = [r["headers"]["i-twilio-idempotency-token"] for r in taken]
    assert len(keys) == len(set(keys)) == 8
    rows = two.rows()
    assert {(r.provider, r.state) for r in rows} == {(SECOND, "sent")}
    assert all(r.sending_via == SECOND for r in rows)
    assert "sms provider 127.0.0.1#1 moved out of the way" in caplog.text
    no_canary_in(caplog.text)


def test_a_text_with_no_receipt_goes_again_through_the_other_provider_once(two: Two) -> None:
    d = two.delivery
    with heard(two) as base:
        settings = two.settings(receipt_wait_minutes=1)
        two.first.silent = True
        d.register(d.ref(PUBLIC.a_number), NUMBERS[0], Channel.SMS)

        async def scenario() -> int:
            dispatcher = Dispatcher(settings, d.public, name="failover-worker")
            try:
                await work_until(dispatcher, all_in(two, "sent"))
                # Not before the wait is over.
                assert dispatcher.failover.look(d.public, datetime.now(UTC)) == 0
                # Two minutes on, it has still had no receipt.
                [row] = two.rows()
                with d.engine.begin() as c:
                    c.execute(
                        update(notifications).values(sent_at=row.sent_at - timedelta(minutes=2))
                    )
                dispatcher.failover._last_look = None
                again = await dispatcher.failover.maintain(d.public, datetime.now(UTC))
                [waiting] = two.rows()
                assert (waiting.state, waiting.sending_via) == ("retrying", SECOND)
                assert "no receipt from 127.0.0.1#1" in waiting.last_error
                await work_until(dispatcher, all_in(two, "delivered"))
                return again
            finally:
                await dispatcher.close()

        assert run(scenario()) == 1
        [lost] = two.texts(two.first)
        [resent] = two.texts(two.second)
        assert lost["form"]["To"] == resent["form"]["To"] == NUMBERS[0]
        first_key = lost["headers"]["i-twilio-idempotency-token"]
        assert resent["headers"]["i-twilio-idempotency-token"] == f"{first_key}.1"
        [row] = two.rows()
        assert (row.state, row.provider, row.attempts) == ("delivered", SECOND, 2)
        # The first provider's receipt, arriving at last, changes nothing.
        url = f"{base}/api/v1/sms/status"
        form = {"MessageSid": f"SM{two.first.port}000001", "MessageStatus": "failed"}
        answer = httpx.post(
            url,
            data=form,
            headers={"X-Twilio-Signature": twilio_signature(PROVIDER_TOKEN, url, form)},
        )
        assert answer.status_code == 204
        forged = httpx.post(
            url,
            data=form,
            headers={"X-Twilio-Signature": twilio_signature("nobody's token", url, form)},
        )
        assert forged.status_code == 403
        [after] = two.rows()
        assert (after.state, after.provider) == ("delivered", SECOND)


def test_late_receipts_move_new_texts_to_the_next_provider(two: Two) -> None:
    d = two.delivery
    with heard(two):
        settings = two.settings()
        two.first.silent = True
        ref = d.ref(PUBLIC.a_number)
        for number in NUMBERS[:3]:
            d.register(ref, number, Channel.SMS)

        async def scenario() -> None:
            dispatcher = Dispatcher(settings, d.public, name="failover-worker")
            try:
                await work_until(dispatcher, all_in(two, "sent"))
                # Six minutes on, none of the three has a receipt: the first is slow.
                dispatcher.failover.look(d.public, datetime.now(UTC) + timedelta(minutes=6))
                d.register(ref, NUMBERS[3], Channel.SMS)
                await work_until(dispatcher, lambda: len(two.texts(two.second)) == 1)
            finally:
                await dispatcher.close()

        run(scenario())
    assert [r["form"]["To"] for r in two.texts(two.first)] == NUMBERS[:3]
    assert [r["form"]["To"] for r in two.texts(two.second)] == [NUMBERS[3]]


def test_an_attempt_a_dead_worker_may_have_sent_stays_with_its_provider(two: Two) -> None:
    d = two.delivery
    settings = two.settings(worker_lease_seconds=1)
    d.register(d.ref(PUBLIC.a_number), NUMBERS[0], Channel.SMS)

    async def scenario() -> None:
        dead = Dispatcher(settings, d.public, name="dead-worker")
        now = datetime.now(UTC)
        # It claims (fixing the first provider) and dies before recording anything.
        assert len(dead._claim(10, now, timedelta(seconds=1))) == 1
        await dead.close()
        heir = Dispatcher(settings, d.public, name="heir")
        try:
            # The heir thinks the first provider is failing, but the attempt may have gone
            # out through it: it goes again the same way, under the same key.
            for _ in range(RULES.minimum):
                heir.failover.record("sms", FIRST, True, datetime.now(UTC))
            assert heir.failover.choices(datetime.now(UTC))["sms"] == SECOND
            await asyncio.sleep(1.1)
            await work_until(heir, all_in(two, "sent"))
        finally:
            await heir.close()

    run(scenario())
    assert len(two.texts(two.first)) == 1 and two.texts(two.second) == []
    [row] = two.rows()
    assert (row.provider, row.sending_via) == (FIRST, FIRST)


def test_mail_goes_through_the_second_relay_when_the_first_is_down(delivery: Delivery) -> None:
    closed = free_port()
    with smtp_sink() as second:
        relay = SmtpRelay("", "127.0.0.1", second.port, None, None, "none")
        settings = replace(
            delivery.settings, smtp_port=closed, more_smtp_relays=(relay,), failover=RULES
        )
        delivery.register(delivery.ref(PUBLIC.a_number), "ana@example.org")

        async def scenario() -> None:
            dispatcher = Dispatcher(settings, delivery.public, name="relay-worker")
            try:
                await work_until(
                    dispatcher,
                    lambda: [r.state for r in rows(delivery)] == ["sent"],
                )
            finally:
                await dispatcher.close()

        run(scenario())
        [mail] = second.wait_for(1)
        assert mail.recipients == ["ana@example.org"]
    [row] = rows(delivery)
    assert (row.provider, row.attempts) == ("127.0.0.1#2", 2)


def rows(delivery: Delivery) -> list[Any]:
    with delivery.engine.connect() as c:
        return list(c.execute(select(notifications).order_by(notifications.c.id)))

"""On SQLite a worker holds the one write lock while a batch of texts is on the wire, and
takes it again at once for the next: SQLite's busy waiting is not fair, so a provider's
receipt could wait out the busy timeout behind batch after batch, be answered 500, and be
lost (providers do not post a receipt twice). A receipt takes its turn: it is applied
after the batch in flight, ahead of the next."""

import fcntl
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import Engine, select

from safevine.domain.contact_address import Channel
from safevine.store.public.tables import notifications
from safevine.store.write_priority import DISPATCH, TURN
from safevine.web.public.sms_inbound import twilio_signature
from tests.canaries import PUBLIC
from tests.notify.conftest import PROVIDER_TOKEN, Delivery, _delivery, heard_from_provider
from tests.notify.test_delivery import release

NUMBER = "+15550100188"
BATCH_SECONDS = 0.05


@pytest.fixture
def sqlite_delivery(sqlite_engine: Engine) -> Iterator[Delivery]:
    with _delivery(sqlite_engine) as ready:
        yield ready


def _text_awaiting_its_receipt(d: Delivery) -> str:
    """A registration by text, confirmed, and a text about an event sent to it that the
    provider sends no receipt for (the test posts it): its provider id."""
    d.register(d.ref(PUBLIC.a_number), NUMBER, Channel.SMS)
    d.dispatch()
    d.provider.wait_for_callbacks(2)  # the code's receipts
    d.provider.silent = True
    release(d.engine)
    d.dispatch()
    with d.engine.connect() as c:
        return str(
            c.execute(
                select(notifications.c.provider_message_id).where(
                    notifications.c.purpose == "event", notifications.c.state == "sent"
                )
            ).scalar_one()
        )


def _state(d: Delivery, sid: str) -> str:
    with d.engine.connect() as c:
        return str(
            c.execute(
                select(notifications.c.state).where(notifications.c.provider_message_id == sid)
            ).scalar_one()
        )


# What a dispatcher does on SQLite, batch after batch, in a process of its own as a worker
# is: wait for priority, take the write lock, hold it while the batch is on the wire,
# commit, and go again at once. It says "working" after its first batches.
BUSY_WORKER = f"""
import sqlite3, sys, time
from safevine.store.engine import make_engine
from safevine.store.write_priority import yield_to_priority
engine = make_engine("sqlite:///" + sys.argv[1])
connection = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
batches = 0
while True:
    yield_to_priority(engine)
    connection.execute("BEGIN IMMEDIATE")
    time.sleep({BATCH_SECONDS})
    connection.execute("COMMIT")
    batches += 1
    if batches == 3:
        print("working", flush=True)
"""


def test_a_receipt_is_applied_between_a_busy_workers_batches(
    sqlite_delivery: Delivery,
) -> None:
    d = sqlite_delivery
    with heard_from_provider(d) as base:
        sid = _text_awaiting_its_receipt(d)

        database = d.engine.url.database
        assert database is not None
        busy = subprocess.Popen(
            [sys.executable, "-c", BUSY_WORKER, database], stdout=subprocess.PIPE, text=True
        )
        try:
            assert busy.stdout is not None and busy.stdout.readline() == "working\n"
            url = f"{base}/api/v1/sms/status"
            form = {"MessageSid": sid, "MessageStatus": "delivered"}
            began = time.monotonic()
            answer = httpx.post(
                url,
                data=form,
                headers={"X-Twilio-Signature": twilio_signature(PROVIDER_TOKEN, url, form)},
                timeout=60,
            )
            took = time.monotonic() - began
            still_working = busy.poll() is None
        finally:
            busy.kill()
            busy.wait(timeout=30)
            if busy.stdout is not None:
                busy.stdout.close()
    assert answer.status_code == 204
    assert _state(d, sid) == "delivered"
    # After the batch in flight (or one more), far within SQLite's 10 s busy timeout.
    assert took < 2, took
    assert still_working


def _locked(path: str) -> bool:
    """Whether another process or file holds an exclusive lock on `path`."""
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_a_receipt_waits_for_the_batch_in_flight_on_the_dispatchers_lock(
    sqlite_delivery: Delivery,
) -> None:
    """It is woken the instant the batch lands, not at SQLite's next busy-wait look, and
    holds the next batch back meanwhile."""
    d = sqlite_delivery
    with heard_from_provider(d) as base:
        sid = _text_awaiting_its_receipt(d)
        database = d.engine.url.database
        assert database is not None
        url = f"{base}/api/v1/sms/status"
        form = {"MessageSid": sid, "MessageStatus": "delivered"}
        signature = {"X-Twilio-Signature": twilio_signature(PROVIDER_TOKEN, url, form)}

        batch = os.open(f"{database}{DISPATCH}", os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(batch, fcntl.LOCK_EX)  # a batch in flight, as a dispatcher holds it
        with ThreadPoolExecutor(1) as pool:
            try:
                posted = pool.submit(httpx.post, url, data=form, headers=signature, timeout=30)
                deadline = time.monotonic() + 10
                while not _locked(f"{database}{TURN}"):
                    assert time.monotonic() < deadline, "the receipt never took its turn"
                    time.sleep(0.02)
                time.sleep(0.3)
                # Waiting for the batch: not answered, nothing written.
                assert not posted.done()
                assert _state(d, sid) == "sent"
            finally:
                os.close(batch)  # the batch has landed
            answer = posted.result(timeout=30)
    assert answer.status_code == 204
    assert _state(d, sid) == "delivered"
    assert not _locked(f"{database}{TURN}") and not _locked(f"{database}{DISPATCH}")


def test_a_dispatcher_waits_for_a_receipts_turn_before_it_takes_the_batch_lock(
    sqlite_delivery: Delivery,
) -> None:
    """A receipt holding its turn waits for the batch lock: a dispatcher that took that
    lock and then waited for the turn would wait for ever."""
    d = sqlite_delivery
    d.register(d.ref(PUBLIC.a_number), "someone@example.org", Channel.EMAIL)
    database = d.engine.url.database
    assert database is not None
    turn = os.open(f"{database}{TURN}", os.O_CREAT | os.O_RDWR, 0o600)
    fcntl.flock(turn, fcntl.LOCK_EX)  # a receipt's turn, waiting for the batch lock
    with ThreadPoolExecutor(1) as pool:
        try:
            dispatched = pool.submit(d.dispatch)
            time.sleep(0.5)
            assert not dispatched.done()
            # The dispatcher waits without the batch lock, which the receipt can take.
            assert not _locked(f"{database}{DISPATCH}")
        finally:
            os.close(turn)
        report = dispatched.result(timeout=60)
    assert report.sent == 1
    assert len(d.sink.received) == 1

"""Providers' reports are applied in batches (`web/public/provider_reports.py`): reports
that arrive together share one transaction, each is answered only after its commit, one
that fails is tried alone and takes no other down, and one that overtakes the worker's
record of its message waits for it. On both databases, through real transactions."""

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Connection, Engine, event, select, text, update

from safevine.domain.contact_address import Channel
from safevine.store.public import receipts
from safevine.store.public.tables import notifications
from safevine.web.public import provider_reports
from safevine.web.public.provider_reports import ReportBatches
from safevine.web.public.sms_inbound import twilio_signature
from tests.canaries import PUBLIC
from tests.loops import run
from tests.notify.conftest import PROVIDER_TOKEN, Delivery, heard_from_provider

NUMBER = "+15550100144"


@pytest.fixture
def scratch(engine: Engine) -> Iterator[Engine]:
    with engine.begin() as c:
        c.execute(text("CREATE TABLE scratch (k VARCHAR(20) PRIMARY KEY)"))
    yield engine
    with engine.begin() as c:
        c.execute(text("DROP TABLE scratch"))


def _insert(key: str) -> Any:
    def apply(connection: Connection, _retry_after: Any) -> str:
        connection.execute(text("INSERT INTO scratch (k) VALUES (:k)"), {"k": key})
        return key

    return apply


def _keys(engine: Engine) -> set[str]:
    with engine.connect() as c:
        return set(c.execute(text("SELECT k FROM scratch")).scalars())


def _commits(engine: Engine) -> list[int]:
    counted: list[int] = []
    event.listen(engine, "commit", lambda _c: counted.append(1))
    return counted


def test_reports_that_arrive_together_share_a_transaction(scratch: Engine) -> None:
    batches = ReportBatches(scratch, 30)
    commits = _commits(scratch)

    async def together() -> list[Any]:
        return await asyncio.gather(*(batches.apply("", _insert(f"k{n}")) for n in range(60)))

    assert run(together()) == [f"k{n}" for n in range(60)]
    assert _keys(scratch) == {f"k{n}" for n in range(60)}
    # Sixty reports in a few transactions, not sixty.
    assert 1 <= len(commits) <= 3, len(commits)


def test_a_failing_report_is_tried_alone_and_takes_no_other_down(scratch: Engine) -> None:
    batches = ReportBatches(scratch, 30)

    def broken(connection: Connection, _retry_after: Any) -> str:
        connection.execute(text("INSERT INTO scratch (k) VALUES ('broken')"))
        raise ValueError("a report that cannot be applied")

    async def together() -> list[Any]:
        calls = [batches.apply("", _insert(f"k{n}")) for n in range(10)]
        calls.insert(5, batches.apply("", broken))
        return await asyncio.gather(*calls, return_exceptions=True)

    results = run(together())
    assert isinstance(results[5], ValueError)
    assert [r for n, r in enumerate(results) if n != 5] == [f"k{n}" for n in range(10)]
    # Every good report committed; nothing of the broken one.
    assert _keys(scratch) == {f"k{n}" for n in range(10)}


def test_the_thread_stops_when_idle_and_starts_again(
    scratch: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(provider_reports, "IDLE_SECONDS", 0.3)
    batches = ReportBatches(scratch, 30)
    assert run(batches.apply("", _insert("first"))) == "first"
    thread = batches._thread
    assert thread is not None
    thread.join(timeout=10)
    assert not thread.is_alive() and batches._thread is None
    assert run(batches.apply("", _insert("second"))) == "second"
    assert _keys(scratch) == {"first", "second"}


def test_a_receipt_that_overtakes_the_record_of_its_text_waits_for_it(
    delivery: Delivery,
) -> None:
    """Over HTTP: the provider's receipt comes before the worker has recorded the text's
    id; it is answered once that record exists and it has been applied."""
    d = delivery
    with heard_from_provider(d) as base:
        d.provider.silent = True
        d.register(d.ref(PUBLIC.a_number), NUMBER, Channel.SMS)
        d.dispatch()
        with d.engine.begin() as c:
            code = c.execute(
                select(notifications.c.id, notifications.c.provider_message_id).where(
                    notifications.c.state == "sent"
                )
            ).one()
            # As if the worker had not yet recorded what the provider answered.
            c.execute(
                update(notifications)
                .where(notifications.c.id == code.id)
                .values(provider_message_id=None)
            )

        def record_later() -> None:
            time.sleep(receipts.LOOK_EVERY * 3)
            with d.engine.begin() as c:
                c.execute(
                    update(notifications)
                    .where(notifications.c.id == code.id)
                    .values(provider_message_id=code.provider_message_id)
                )

        recorder = threading.Thread(target=record_later)
        recorder.start()
        url = f"{base}/api/v1/sms/status"
        form = {"MessageSid": code.provider_message_id, "MessageStatus": "delivered"}
        began = time.monotonic()
        answer = httpx.post(
            url,
            data=form,
            headers={"X-Twilio-Signature": twilio_signature(PROVIDER_TOKEN, url, form)},
            timeout=30,
        )
        took = time.monotonic() - began
        recorder.join(timeout=10)
    assert answer.status_code == 204
    assert took >= receipts.LOOK_EVERY * 3
    with d.engine.connect() as c:
        state = c.execute(
            select(notifications.c.state).where(notifications.c.id == code.id)
        ).scalar_one()
    assert state == "delivered"

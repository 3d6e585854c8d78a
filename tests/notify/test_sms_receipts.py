"""What became of a text, as the provider reports it: signed status callbacks from the
local provider, over real HTTP, to the running public service, move each notification to
the state that tells the truth. A handset out of reach is tried again as a new message,
an impossible number fails for good, a carrier STOP ends the registration, a reply of YES
acknowledges; nobody but the provider is heard, and nobody learns anything from asking."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from safevine.domain.contact_address import Channel
from safevine.store.public.tables import notifications, registrations
from safevine.web.public.sms_inbound import twilio_signature
from safevine.web.server import background_server
from tests.canaries import NON_PUBLIC, PUBLIC
from tests.notify.conftest import PROVIDER_TOKEN, Delivery, heard_from_provider
from tests.notify.test_delivery import release

TOKEN = PROVIDER_TOKEN
NUMBER = "+15550100100"


@dataclass
class Receipts:
    delivery: Delivery
    base: str
    released: int = 0

    def post(self, path: str, form: dict[str, str], token: str = TOKEN) -> httpx.Response:
        url = f"{self.base}{path}"
        signature = twilio_signature(token, url, form)
        return httpx.post(url, data=form, headers={"X-Twilio-Signature": signature})

    def events(self) -> list[Any]:
        with self.delivery.engine.connect() as c:
            return list(
                c.execute(
                    select(notifications)
                    .where(notifications.c.purpose == "event")
                    .order_by(notifications.c.id)
                )
            )

    def send_event(self, expected_callbacks: int) -> Any:
        """A release, sent, and the provider's receipts for it arrived."""
        self.released += 1
        release(self.delivery.engine, f"rel-{self.released}", days=0.01 / self.released)
        self.delivery.dispatch()
        self.delivery.provider.wait_for_callbacks(expected_callbacks)
        return self.events()[-1]


@contextmanager
def _receipts(delivery: Delivery) -> Iterator[Receipts]:
    with heard_from_provider(delivery) as base:
        delivery.register(delivery.ref(PUBLIC.a_number), NUMBER, Channel.SMS)
        delivery.dispatch()  # the confirmation code, and its two receipts
        delivery.provider.wait_for_callbacks(2)
        yield Receipts(delivery, base)


@pytest.fixture
def receipts(delivery: Delivery) -> Iterator[Receipts]:
    with _receipts(delivery) as ready:
        yield ready


def test_a_delivered_receipt_makes_a_text_delivered(receipts: Receipts) -> None:
    sent = receipts.delivery.provider.requests[-1]["form"]
    assert sent["StatusCallback"] == f"{receipts.base}/api/v1/sms/status"
    row = receipts.send_event(4)
    assert (row.state, row.receipt, row.provider) == ("delivered", "delivered", "127.0.0.1")
    assert row.delivered_at is not None and row.delivered_at >= row.sent_at
    assert [status for _, _, status in receipts.delivery.provider.callbacks] == [204] * 4
    # The same receipt again, and a late `sent` after it, change nothing.
    for status in ("delivered", "sent"):
        answer = receipts.post(
            "/api/v1/sms/status", {"MessageSid": row.provider_message_id, "MessageStatus": status}
        )
        assert answer.status_code == 204
    assert receipts.events()[-1].state == "delivered"


def test_an_unreachable_handset_is_tried_again_as_a_new_message(receipts: Receipts) -> None:
    provider = receipts.delivery.provider
    provider.outcomes[NUMBER] = [("undelivered", "30003")]
    first = receipts.send_event(4)
    assert (first.state, first.error_code, first.failed_permanently) == ("retrying", "30003", None)
    assert "unreachable" in first.last_error
    # Due now: the next attempt is a new message, under a new idempotency token.
    with receipts.delivery.engine.begin() as c:
        c.execute(
            update(notifications)
            .where(notifications.c.id == first.id)
            .values(next_attempt_at=first.sent_at)
        )
    receipts.delivery.dispatch()
    provider.wait_for_callbacks(6)
    again = receipts.events()[-1]
    assert (again.id, again.state, again.attempts) == (first.id, "delivered", 2)
    texts = [r for r in provider.requests if r["kind"] == "Messages"]
    tokens = [r["headers"]["i-twilio-idempotency-token"] for r in texts[-2:]]
    assert tokens[0] != tokens[1]
    # A late receipt about the lost attempt does not touch the one that arrived.
    answer = receipts.post(
        "/api/v1/sms/status",
        {"MessageSid": first.provider_message_id, "MessageStatus": "failed", "ErrorCode": "30005"},
    )
    assert answer.status_code == 204 and receipts.events()[-1].state == "delivered"


def test_an_impossible_number_fails_for_good(receipts: Receipts) -> None:
    receipts.delivery.provider.outcomes[NUMBER] = [("failed", "21211")]
    row = receipts.send_event(4)
    assert (row.state, row.error_code, row.failed_permanently) == ("failed", "21211", True)
    assert row.last_error == "provider error 21211: invalid 'To' number"


def test_a_stop_at_the_carrier_ends_the_registration(receipts: Receipts) -> None:
    receipts.delivery.provider.outcomes[NUMBER] = [("undelivered", "21610")]
    row = receipts.send_event(4)
    assert (row.state, row.failed_permanently) == ("failed", True)
    with receipts.delivery.engine.connect() as c:
        ended = c.execute(select(registrations.c.state, registrations.c.end_reason)).one()
    assert tuple(ended) == ("ended", "carrier_stop")


def test_a_reply_of_yes_acknowledges_the_latest_message(receipts: Receipts) -> None:
    row = receipts.send_event(4)
    stranger = receipts.post("/api/v1/sms/inbound", {"From": "+15550199999", "Body": "YES"})
    assert receipts.events()[-1].state == "delivered"
    reply = receipts.post("/api/v1/sms/inbound", {"From": NUMBER, "Body": "Si."})
    assert (stranger.status_code, reply.status_code) == (200, 200)
    assert stranger.text == reply.text  # the answer says nothing about who is registered
    acknowledged = receipts.events()[-1]
    assert (acknowledged.id, acknowledged.state) == (row.id, "acknowledged")
    assert acknowledged.acknowledged_at is not None
    # The confirmation code is not a message to acknowledge, and a second YES is nothing.
    receipts.post("/api/v1/sms/inbound", {"From": NUMBER, "Body": "OK"})
    with receipts.delivery.engine.connect() as c:
        states = {
            p: s for p, s in c.execute(select(notifications.c.purpose, notifications.c.state))
        }
    assert states == {"confirmation": "delivered", "event": "acknowledged"}


def test_only_the_provider_is_heard_and_nobody_learns_anything(
    receipts: Receipts, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    row = receipts.send_event(4)
    forged = {
        "MessageSid": row.provider_message_id,
        "MessageStatus": "failed",
        "ErrorCode": "21211",
    }
    assert receipts.post("/api/v1/sms/status", forged, token="not the token").status_code == 403
    unsigned = httpx.post(f"{receipts.base}/api/v1/sms/status", data=forged)
    assert unsigned.status_code == 403
    assert receipts.events()[-1].state == "delivered"
    # A known message id and an unknown one are answered alike.
    known = receipts.post(
        "/api/v1/sms/status", {"MessageSid": row.provider_message_id, "MessageStatus": "delivered"}
    )
    unknown = receipts.post(
        "/api/v1/sms/status", {"MessageSid": "SM999999", "MessageStatus": "delivered"}
    )
    nonsense = receipts.post(
        "/api/v1/sms/status", {"MessageSid": "x" * 5000 + "\x00", "MessageStatus": "\x00" * 300}
    )
    assert (
        (known.status_code, known.content)
        == (unknown.status_code, unknown.content)
        == (
            nonsense.status_code,
            nonsense.content,
        )
    )
    logged = "\n".join(r.getMessage() + repr(r.__dict__) for r in caplog.records)
    people = [w for c in [PUBLIC, *NON_PUBLIC] for w in c.identifiers]
    assert [w for w in people if w in logged] == []
    assert NUMBER not in logged and NUMBER[2:] not in logged


def test_the_staff_report_says_what_reached_whom_per_channel_and_provider(
    receipts: Receipts,
) -> None:
    """Delivered, failed for good, and one still awaiting its receipt past the wait: the
    report's rates per channel and provider, over the staff service's HTTP."""
    from safevine.web.staff_app import create_staff_app
    from tests.staff.conftest import make_tokens

    provider = receipts.delivery.provider
    receipts.send_event(4)  # delivered
    provider.outcomes[NUMBER] = [("failed", "30005")]
    receipts.send_event(6)
    provider.outcomes[NUMBER] = [("sent", None)]  # the carrier never says more
    waiting = receipts.send_event(8)
    with receipts.delivery.engine.begin() as c:
        # The last one was taken an hour ago and is still waiting.
        c.execute(
            update(notifications)
            .where(notifications.c.id == waiting.id)
            .values(sent_at=waiting.sent_at - timedelta(hours=1))
        )
    token = make_tokens(receipts.delivery.engine)["report"]
    app = create_staff_app(receipts.delivery.settings)
    try:
        with background_server(app) as base, httpx.Client(base_url=base) as client:
            headers = {"Authorization": f"Bearer {token}"}
            report = client.get("/api/v1/staff/report", headers=headers).json()
            page = client.get("/staff/report", headers=headers).text
    finally:
        app.state.staff.records_engine.dispose()
    [sms] = report["receipts"]
    # The confirmation code and two events delivered, one failed, one awaiting.
    assert (sms["channel"], sms["provider"], sms["taken"]) == ("sms", "127.0.0.1", 4)
    counts = {k: sms[k] for k in ("delivered", "acknowledged", "failed", "awaiting", "no_receipt")}
    assert counts == {
        "delivered": 2,
        "acknowledged": 0,
        "failed": 1,
        "awaiting": 1,
        "no_receipt": 1,
    }
    assert sms["rates"]["delivered"] == 0.5 and sms["rates"]["failed"] == 0.25
    assert sms["receipt_seconds"]["receipts"] == 2 and sms["receipt_seconds"]["median"] >= 0
    assert "What reached people" in page and "127.0.0.1" in page and "50.0%" in page

"""Bounces: each email goes out with a return path of its own; the test relay (a real
aiosmtpd server) later sends a delivery status notification there, by SMTP, to the real
bounce receiver, which fails the notification for good (hard) or sends it again (soft)."""

import logging
import smtplib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from safevine.domain.verp import key_of
from safevine.notify.bounces import BounceHandler, start_bounce_server
from safevine.store.public.tables import notifications, registrations
from safevine.web.public_app import create_public_app
from safevine.web.server import background_server, free_port
from safevine.web.staff_app import create_staff_app
from tests.canaries import NON_PUBLIC, PUBLIC
from tests.notify.conftest import Delivery
from tests.notify.test_delivery import release
from tests.staff.conftest import make_tokens

BOUNCES = "bounces@agency.example"


@dataclass
class Bounces:
    delivery: Delivery
    port: int
    handler: BounceHandler
    manage_token: str

    def event(self) -> Any:
        with self.delivery.engine.connect() as c:
            return c.execute(select(notifications).where(notifications.c.purpose == "event")).one()


@pytest.fixture
def bounces(delivery: Delivery) -> Iterator[Bounces]:
    delivery.settings = replace(delivery.settings, bounce_address=BOUNCES)
    port = free_port()
    handler, controller = start_bounce_server(delivery.settings, delivery.public, "127.0.0.1", port)
    try:
        confirmed = delivery.register(delivery.ref(PUBLIC.a_number), "ana@example.org")
        delivery.dispatch()
        release(delivery.engine)
        delivery.dispatch()
        yield Bounces(delivery, port, handler, confirmed.manage_token)
    finally:
        controller.stop()


def test_each_email_has_its_own_return_path(bounces: Bounces) -> None:
    code, update_ = bounces.delivery.sink.received[-2:]
    row = bounces.event()
    assert update_.sender == f"bounces+{row.idempotency_key}@agency.example"
    assert key_of(code.sender, BOUNCES) != key_of(update_.sender, BOUNCES)


def test_a_hard_bounce_fails_the_email_and_marks_the_address(
    bounces: Bounces, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert bounces.event().state == "sent"
    bounces.delivery.sink.bounce(bounces.delivery.sink.received[-1], bounces.port, "5.1.1")
    row = bounces.event()
    assert (row.state, row.failed_permanently, row.receipt) == ("failed", True, "bounced")
    with bounces.delivery.engine.connect() as c:
        assert c.execute(select(registrations.c.bounced_at)).scalar_one() is not None
    # The registrant's own page and the API say their mail is not arriving.
    manage = bounces.manage_token
    app = create_public_app(bounces.delivery.settings)
    try:
        with background_server(app) as base, httpx.Client(base_url=base) as client:
            shown = client.get(f"/api/v1/registrations/{manage}").json()
            page = client.get(f"/m/{manage}").text
    finally:
        app.state.safevine.public_engine.dispose()
    assert shown["address_bouncing"] is True
    assert "Our messages to this address are being returned" in page
    # Staff see how many addresses bounce, over the staff service, and no address.
    token = make_tokens(bounces.delivery.engine)["report"]
    staff = create_staff_app(bounces.delivery.settings)
    try:
        with background_server(staff) as base, httpx.Client(base_url=base) as client:
            headers = {"Authorization": f"Bearer {token}"}
            report = client.get("/api/v1/staff/report", headers=headers).json()
            report_page = client.get("/staff/report", headers=headers).text
    finally:
        staff.state.staff.records_engine.dispose()
    assert report["bounces"] == {"active_bouncing": 1, "bounced_in_period": 1, "period_days": 30}
    assert '<td id="bouncing-active">1</td>' in report_page
    assert "ana@example.org" not in report_page and "ana@example.org" not in str(report)
    # The same bounce again changes nothing more.
    bounces.delivery.sink.bounce(bounces.delivery.sink.received[-1], bounces.port, "5.1.1")
    assert [a.value for a in bounces.handler.applied] == ["failed", "ignored"]
    logged = "\n".join(r.getMessage() + repr(r.__dict__) for r in caplog.records)
    people = [w for c in [PUBLIC, *NON_PUBLIC] for w in c.identifiers]
    assert [w for w in people if w in logged] == [] and "ana@example.org" not in logged


def test_a_soft_bounce_sends_it_again_under_a_new_return_path(bounces: Bounces) -> None:
    first = bounces.delivery.sink.received[-1]
    bounces.delivery.sink.bounce(first, bounces.port, "4.2.2")
    row = bounces.event()
    assert row.state == "retrying"
    with bounces.delivery.engine.begin() as c:
        c.execute(
            update(notifications)
            .where(notifications.c.id == row.id)
            .values(next_attempt_at=row.created_at)
        )
    bounces.delivery.dispatch()
    again = bounces.delivery.sink.received[-1]
    assert again.sender != first.sender and bounces.event().state == "sent"
    # A late bounce about the first attempt does not touch the second.
    bounces.delivery.sink.bounce(first, bounces.port, "5.1.1")
    assert bounces.event().state == "sent"


def test_the_receiver_takes_mail_only_for_its_return_paths(bounces: Bounces) -> None:
    with smtplib.SMTP("127.0.0.1", bounces.port, timeout=10) as client:
        client.ehlo("relay.example")
        for stranger in ("postmaster@agency.example", "bounces+0123456789abcdef@other.example"):
            code, _ = client.docmd("MAIL FROM:<>")
            assert code == 250
            code, _ = client.docmd(f"RCPT TO:<{stranger}>")
            assert code == 550
            client.docmd("RSET")
        # Mail to a return path that reports no failure (an auto-reply) changes nothing.
        ours = bounces.delivery.sink.received[-1].sender
        client.sendmail("", [ours], b"Subject: Out of office\r\n\r\nI am away.\r\n")
    assert bounces.event().state == "sent"

"""Webhook destinations checked again at every send, through the dispatcher, for addresses
stored before today's rules: a refused one fails at once, naming the rule, and nothing
reaches a receiver; a failed lookup is tried again later."""

import socket
from typing import Any

import pytest
from sqlalchemy import Engine, select

from safevine.domain.contact_address import Channel
from safevine.store.public.tables import notifications
from tests.canaries import PUBLIC
from tests.notify.conftest import Delivery
from tests.notify.resolvers import resolve_with
from tests.notify.tls_receiver import tls_receiver

NUMERIC = "webhook address must not spell an IP address other than as a.b.c.d"
LOOPBACK = "a private address (loopback)"


def outcomes(engine: Engine) -> list[Any]:
    """Each webhook registration's confirmation message, in the order they were made."""
    with engine.connect() as connection:
        return list(
            connection.execute(
                select(notifications.c.state, notifications.c.attempts, notifications.c.last_error)
                .where(notifications.c.purpose == "confirmation")
                .order_by(notifications.c.id)
            )
        )


def test_private_destinations_fail_at_send_and_nothing_is_connected_to(
    delivery: Delivery,
) -> None:
    ref = delivery.ref(PUBLIC.a_number)
    with tls_receiver("localhost") as tls:
        refused = {
            f"https://localhost:{tls.port}/hook": f"webhook host resolves to {LOOPBACK}",
            f"https://127.0.0.1:{tls.port}/hook": f"webhook host is {LOOPBACK}",
            f"https://[::ffff:127.0.0.1]:{tls.port}/hook": (
                "webhook host is a private address (loopback (inside an IPv6 address))"
            ),
            f"https://2130706433:{tls.port}/hook": NUMERIC,
            f"https://0x7f.1:{tls.port}/hook": NUMERIC,
            f"https://127.1:{tls.port}/hook": NUMERIC,
            f"https://0177.0.0.1:{tls.port}/hook": NUMERIC,
            f"{delivery.provider.base}/hook": "webhook address must use https",
        }
        for url in refused:
            delivery.register_stored(ref, url, Channel.WEBHOOK)
        report = delivery.dispatch(webhook_allow_private=False)
        assert (report.failed, report.sent, report.retrying) == (len(refused), 0, 0)
        assert [tuple(row) for row in outcomes(delivery.engine)] == [
            ("failed", 1, reason) for reason in refused.values()
        ]
        assert tls.connections == 0
    assert delivery.provider.requests == []


def test_odd_numeric_spellings_fail_at_send_even_where_loopback_is_allowed(
    delivery: Delivery,
) -> None:
    ref = delivery.ref(PUBLIC.a_number)
    port = delivery.provider.base.rsplit(":", 1)[1]
    # Each would reach the receiver on 127.0.0.1 if the C resolver were left to read it.
    for host in ("2130706433", "0x7f.1", "127.1", "0177.0.0.1", "127.0.0.1"):
        delivery.register_stored(ref, f"http://{host}:{port}/hook", Channel.WEBHOOK)
    report = delivery.dispatch()
    assert (report.failed, report.sent) == (4, 1)
    assert [row.last_error for row in outcomes(delivery.engine)] == [NUMERIC] * 4 + [None]
    [hook] = delivery.provider.requests
    assert hook["headers"]["host"] == f"127.0.0.1:{port}"


def test_a_redirect_fails_the_message_and_is_not_followed(delivery: Delivery) -> None:
    delivery.provider.hook_answer = (307, b"", {"location": f"{delivery.provider.base}/hook"})
    delivery.register(
        delivery.ref(PUBLIC.a_number), f"{delivery.provider.base}/hook", Channel.WEBHOOK
    )
    assert delivery.dispatch().failed == 1
    [row] = outcomes(delivery.engine)
    assert tuple(row) == (
        "failed",
        1,
        "webhook receiver answered 307, a redirect, which is not followed",
    )
    assert len(delivery.provider.requests) == 1


def test_a_failed_lookup_is_tried_again(
    delivery: Delivery, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = resolve_with(monkeypatch, socket.gaierror(socket.EAI_AGAIN, "Temporary failure"))
    delivery.register(
        delivery.ref(PUBLIC.a_number), "https://hooks.example.test/hook", Channel.WEBHOOK
    )
    report = delivery.dispatch(webhook_allow_private=False, retry_base_seconds=3600)
    assert (report.retrying, report.failed) == (1, 0)
    [row] = outcomes(delivery.engine)
    assert tuple(row) == ("retrying", 1, "webhook host name did not resolve (Temporary failure)")
    assert answers.calls == [("hooks.example.test", 443)]

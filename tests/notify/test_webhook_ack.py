"""A webhook receiver acknowledges what it got, by a call back signed with the
registration's secret, over real HTTP to the running public service; anything not signed
so, too old, or about another key changes nothing, and every answer is the same."""

import json
import time

import httpx
from sqlalchemy import select

from safevine.domain.contact_address import Channel
from safevine.notify.webhook_signature import signature
from safevine.store.public.tables import notifications
from safevine.web.public_app import create_public_app
from safevine.web.server import background_server
from tests.canaries import PUBLIC
from tests.notify.conftest import Delivery
from tests.notify.test_delivery import release


def _state(delivery: Delivery) -> str:
    with delivery.engine.connect() as c:
        return str(
            c.execute(
                select(notifications.c.state).where(notifications.c.purpose == "event")
            ).scalar_one()
        )


def test_a_receiver_acknowledges_with_a_signed_call_back(delivery: Delivery) -> None:
    confirmed = delivery.register(
        delivery.ref(PUBLIC.a_number), f"{delivery.provider.base}/hook", Channel.WEBHOOK
    )
    assert confirmed.webhook_secret
    release(delivery.engine)
    delivery.dispatch()
    assert _state(delivery) == "delivered"  # the receiver answered 2xx
    hook = [r for r in delivery.provider.requests if r["kind"] == "webhook"][-1]
    key = hook["headers"]["idempotency-key"]
    app = create_public_app(delivery.settings)

    def ack(secret: str, key: str, age: int = 0) -> httpx.Response:
        body = json.dumps({"idempotency_key": key}).encode()
        stamp = str(int(time.time()) - age)
        headers = {
            "X-Safevine-Timestamp": stamp,
            "X-Safevine-Signature": signature(secret, stamp, body),
            "Content-Type": "application/json",
        }
        return client.post("/api/v1/webhooks/ack", content=body, headers=headers)

    try:
        with background_server(app) as base, httpx.Client(base_url=base) as client:
            refused = [
                ack("not the secret", key),
                ack(confirmed.webhook_secret, key, age=3600),
                ack(confirmed.webhook_secret, "0123456789abcdef0123456789abcdef"),
                client.post("/api/v1/webhooks/ack", content=b"\x00" * 5000),
            ]
            assert _state(delivery) == "delivered"
            accepted = ack(confirmed.webhook_secret, key)
    finally:
        app.state.safevine.public_engine.dispose()
    assert {(r.status_code, r.content) for r in [*refused, accepted]} == {(204, b"")}
    assert _state(delivery) == "acknowledged"
